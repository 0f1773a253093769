// chatctl config check|example — validate a chatd.toml or print a commented example.
#include <cstdio>

#include "cli/common.h"

namespace chatd::cli {

void RegisterConfig(CLI::App& app, Globals& g) {
  CLI::App* config = app.add_subcommand("config", "check or print chatd.toml");
  config->require_subcommand(1);
  CLI::App* check = config->add_subcommand("check", "validate the config; errors name file, line and key");
  check->callback([&g] {
    auto cfg = LoadRelayConfig(g);
    if (cfg.ok()) printf("%s: ok (relay %s, node %d)\n", cfg->config_path.c_str(), cfg->relay_name.c_str(), cfg->node_id);
  });
  CLI::App* example = config->add_subcommand("example", "print a commented example chatd.toml");
  example->callback([] { printf("%s", conf::ExampleConfig({{"relay.name", "\"eu1\""}, {"relay.node_id", "1"}}).c_str()); });
}

}  // namespace chatd::cli
