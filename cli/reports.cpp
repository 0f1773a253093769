// chatctl reports list|resolve — what users reported to this relay (POST /api/v1/reports),
// through the running relay's admin API. Reports stay on the relay where they were filed.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>

#include "base/json.h"
#include "cli/common.h"

namespace chatd::cli {

namespace {

void PrintReportRow(const json::Value& r) {
  std::string reason = Field(r, "reason");
  if (reason.size() > 60) reason = reason.substr(0, 57) + "...";
  for (char& c : reason) {
    if (c == '\n' || c == '\t' || c == '\r') c = ' ';
  }
  printf("%-20s %-9s %-20s %-20s %-24s %s\n", Field(r, "report_id").c_str(), Field(r, "status").c_str(),
         Field(r, "user_id").c_str(), Field(r, "message_id").c_str(), Field(r, "created_at").c_str(), reason.c_str());
}

}  // namespace

void RegisterReports(CLI::App& app, Globals& g) {
  CLI::App* reports = app.add_subcommand("reports", "users' reports of messages and users: list, resolve (admin API)");
  reports->require_subcommand(1);

  struct ListOpts {
    std::string status = "open";
    int limit = 1000;
  };
  auto lo = std::make_shared<ListOpts>();
  CLI::App* list = reports->add_subcommand("list", "list reports, oldest first (default: the open ones)");
  list->add_option("--status", lo->status, "open (default), resolved or all")
      ->check(CLI::IsMember({"open", "resolved", "all"}));
  list->add_option("--limit", lo->limit, "at most this many reports (default 1000)")->check(CLI::Range(1, 1000000));
  list->callback([lo, &g] {
    auto cfg = LoadRelayConfig(g);
    if (!cfg.ok()) return;
    if (g.output != "json") {
      printf("%-20s %-9s %-20s %-20s %-24s %s\n", "REPORT_ID", "STATUS", "USER_ID", "MESSAGE_ID", "CREATED_AT",
             "REASON");
    }
    AdminPagedList(g, *cfg, "/admin/v1/reports?status=" + lo->status, "reports", lo->limit, PrintReportRow);
  });

  struct ResolveOpts {
    std::string id, note;
  };
  auto ro = std::make_shared<ResolveOpts>();
  CLI::App* resolve = reports->add_subcommand("resolve", "mark an open report resolved, with an optional note");
  resolve->add_option("report_id", ro->id, "the report's id (from reports list)")->required();
  resolve->add_option("--note", ro->note, "what was done (kept with the report; at most 2000 bytes)");
  resolve->callback([ro, &g] {
    auto cfg = LoadRelayConfig(g);
    if (!cfg.ok()) return;
    if (!json::ParseId(ro->id)) {
      PrintError(BadRequest("REPORT_ID is a report id (digits)"));
      g.exit_code = kUsage;
      return;
    }
    json::JsonWriter body;
    body.BeginObject().Key("resolution").Str(ro->note).EndObject();
    json::Doc doc;
    if (!AdminAnswer(g, AdminPost(*cfg, "/admin/v1/reports/" + ro->id + "/resolve", body.Take()), &doc)) return;
    printf("report %s resolved\n", Field(doc, "report_id").c_str());
  });
}

}  // namespace chatd::cli
