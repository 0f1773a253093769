// chatctl — the operator's CLI: `chatctl <noun> <verb>`. See chatctl(1).
#include <sys/stat.h>

#include "cli/cli.h"

int main(int argc, char** argv) {
  umask(077);  // keys, tokens and stores created by chatctl are private to the operator
  CLI::App app{"chatctl — operate chatd relays"};
  app.require_subcommand(1);
  chatd::cli::Globals g;
  app.add_option("-c,--config", g.config, "path of the relay's chatd.toml")->envname("CHATD_CONFIG");
  app.add_option("-o,--output", g.output, "output format: table or json")
      ->check(CLI::IsMember({"table", "json"}));
  app.set_version_flag("--version", "chatctl 0.1.0");
  chatd::cli::RegisterInit(app, g);
  chatd::cli::RegisterStatus(app, g);
  chatd::cli::RegisterKeys(app, g);
  chatd::cli::RegisterConfig(app, g);
  chatd::cli::RegisterPeers(app, g);
  chatd::cli::RegisterFederation(app, g);
  chatd::cli::RegisterUsers(app, g);
  chatd::cli::RegisterReports(app, g);
  chatd::cli::RegisterStore(app, g);
  chatd::cli::RegisterBackup(app, g);
  chatd::cli::RegisterBench(app, g);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : chatd::cli::kUsage;
  }
  return g.exit_code;
}
