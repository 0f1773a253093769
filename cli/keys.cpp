// chatctl keys show — the relay's public key, alone on stdout (the form `peers add --key` takes).
#include <cstdio>

#include "cli/common.h"
#include "crypto/keys.h"
#include "relay/relay.h"

namespace chatd::cli {

void RegisterKeys(CLI::App& app, Globals& g) {
  CLI::App* keys = app.add_subcommand("keys", "the relay's signing key");
  keys->require_subcommand(1);
  CLI::App* show = keys->add_subcommand("show", "print the relay's public key");
  show->callback([&g] {
    auto cfg = LoadRelayConfig(g);
    if (!cfg.ok()) return;
    auto key = crypto::KeyPair::LoadFile(cfg->data_dir + "/" + Relay::kKeyFile);
    if (!key.ok()) {
      PrintError(key.status());
      g.exit_code = kFail;
      return;
    }
    printf("%s\n", key->public_key().ToString().c_str());
  });
}

}  // namespace chatd::cli
