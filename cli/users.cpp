// chatctl users list|show|disable|enable — accounts, through the running relay's admin
// API. Disabling emits a signed user_disable envelope that every relay applies: the
// user's tokens are refused everywhere, open sessions close, login is refused; enabling
// lets the user log in again (tokens issued before the disable stay refused).
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <memory>
#include <string>

#include "base/json.h"
#include "cli/common.h"

namespace chatd::cli {

namespace {

// NAME is "alice" (a user of this relay) or a handle "alice@eu1".
bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 100) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '@' || c == '-')) return false;
  }
  return true;
}

void PrintUserRow(const json::Value& u) {
  printf("%-20s %-32s %-9s %s\n", Field(u, "user_id").c_str(), Field(u, "handle").c_str(),
         u["disabled"].IsTrue() ? "disabled" : "active", Field(u, "created_at").c_str());
}

void PrintUser(const json::Value& u) {
  for (const char* k :
       {"user_id", "handle", "relay", "first_name", "last_name", "created_at", "disabled", "email", "active_devices"}) {
    if (u.HasMember(k)) printf("%-15s %s\n", k, Field(u, k).c_str());
  }
}

// Loads the config and checks NAME.
Result<conf::Config> Prepare(Globals& g, const std::string& name) {
  auto cfg = LoadRelayConfig(g);
  if (!cfg.ok()) return cfg;
  if (!ValidName(name)) {
    Status s = BadRequest("NAME is a user name (alice) or a handle (alice@eu1)");
    PrintError(s);
    g.exit_code = kUsage;
    return s;
  }
  return cfg;
}

}  // namespace

void RegisterUsers(CLI::App& app, Globals& g) {
  CLI::App* users = app.add_subcommand("users", "accounts: list, show, disable, enable (admin API)");
  users->require_subcommand(1);

  struct ListOpts {
    bool all = false;
    int limit = 1000;
  };
  auto lo = std::make_shared<ListOpts>();
  CLI::App* list = users->add_subcommand("list", "list this relay's users (--all: the whole federation's directory)");
  list->add_flag("--all", lo->all, "every user of the replicated directory, not only those homed here");
  list->add_option("--limit", lo->limit, "at most this many users (default 1000)")->check(CLI::Range(1, 1000000));
  list->callback([lo, &g] {
    auto cfg = LoadRelayConfig(g);
    if (!cfg.ok()) return;
    if (g.output != "json") printf("%-20s %-32s %-9s %s\n", "USER_ID", "HANDLE", "STATE", "CREATED_AT");
    AdminPagedList(g, *cfg, lo->all ? "/admin/v1/users?all=1" : "/admin/v1/users", "users", lo->limit, PrintUserRow);
  });

  auto show_name = std::make_shared<std::string>();
  CLI::App* show = users->add_subcommand("show", "one user: profile, state, and at home its email and active devices");
  show->add_option("name", *show_name, "alice (a user of this relay) or alice@eu1")->required();
  show->callback([show_name, &g] {
    auto cfg = Prepare(g, *show_name);
    if (!cfg.ok()) return;
    json::Doc doc;
    if (AdminAnswer(g, AdminGet(*cfg, "/admin/v1/users/" + *show_name), &doc)) PrintUser(doc);
  });

  for (const char* verb : {"disable", "enable"}) {
    bool disable = std::string(verb) == "disable";
    struct Opts {
      std::string name;
      bool dry_run = false;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* cmd = users->add_subcommand(
        verb, disable ? "disable a user of this relay on every relay: tokens refused, sessions closed, login refused"
                      : "let a disabled user of this relay log in again");
    cmd->add_option("name", o->name, "alice (a user of this relay) or alice@eu1")->required();
    cmd->add_flag("--dry-run", o->dry_run, "show the user and change nothing");
    cmd->callback([o, disable, &g] {
      auto cfg = Prepare(g, o->name);
      if (!cfg.ok()) return;
      if (o->dry_run) {
        auto data = AdminGet(*cfg, "/admin/v1/users/" + o->name);
        if (!data.ok()) return FailAdmin(g, data.status());
        json::Doc doc;
        if (!json::Parse(*data, &doc).ok()) return FailAdmin(g, Internal("malformed answer"));
        printf("would %s %s (user_id %s, now %s, %s active devices)\n", disable ? "disable" : "enable",
               Field(doc, "handle").c_str(), Field(doc, "user_id").c_str(),
               doc["disabled"].IsTrue() ? "disabled" : "active", Field(doc, "active_devices").c_str());
        return;
      }
      json::Doc doc;
      if (!AdminAnswer(g, AdminPost(*cfg, "/admin/v1/users/" + o->name + (disable ? "/disable" : "/enable")), &doc)) {
        return;
      }
      printf("%s %s\n", Field(doc, "handle").c_str(), doc["disabled"].IsTrue() ? "disabled" : "enabled");
    });
  }
}

}  // namespace chatd::cli
