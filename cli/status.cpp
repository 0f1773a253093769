// chatctl status — what the running relay says about itself (admin API).
#include <cstdio>

#include "base/json.h"
#include "cli/common.h"

namespace chatd::cli {

void RegisterStatus(CLI::App& app, Globals& g) {
  CLI::App* cmd = app.add_subcommand("status", "show the running relay's status");
  cmd->callback([&g] {
    auto cfg = LoadRelayConfig(g);
    if (!cfg.ok()) return;
    json::Doc doc;
    if (!AdminAnswer(g, AdminGet(*cfg, "/admin/v1/status"), &doc)) return;
    for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
      rapidjson::StringBuffer buf;
      rapidjson::Writer<rapidjson::StringBuffer> w(buf);
      it->value.Accept(w);
      std::string v = it->value.IsString() ? it->value.GetString() : buf.GetString();
      printf("%-10s %s\n", it->name.GetString(), v.c_str());
    }
  });
}

}  // namespace chatd::cli
