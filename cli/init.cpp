// chatctl init — create a relay: config, key, admin token and an empty store.
#include <sys/stat.h>

#include <cstdio>

#include "base/time.h"
#include "cli/common.h"
#include "crypto/bytes.h"
#include "crypto/keys.h"
#include "relay/relay.h"
#include "store/store.h"

namespace chatd::cli {

namespace {

struct InitOpts {
  std::string data_dir, relay;
  int node_id = -1;
  std::string api = "127.0.0.1:8080", gateway = "127.0.0.1:8081", federation = "127.0.0.1:8082",
              admin = "127.0.0.1:8083";
};

bool Exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

Status MakeDirs(const std::string& dir) {
  std::string path;
  for (size_t i = 0; i <= dir.size(); ++i) {
    if (i == dir.size() || dir[i] == '/') {
      if (!path.empty() && !Exists(path) && mkdir(path.c_str(), 0700) != 0) {
        return IoError("cannot create " + path);
      }
    }
    if (i < dir.size()) path.push_back(dir[i]);
  }
  return Status::Ok();
}

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

int RunInit(const InitOpts& o) {
  const std::string dir = o.data_dir;
  const std::string config_path = dir + "/chatd.toml";
  for (const char* f : {"chatd.toml", Relay::kKeyFile, store::Store::kFileName}) {
    if (Exists(dir + "/" + f)) {
      fprintf(stderr, "chatctl: %s/%s exists: %s already holds a relay; refusing to overwrite it\n", dir.c_str(), f,
              dir.c_str());
      return kFail;
    }
  }
  std::map<std::string, std::string> overrides = {
      {"relay.name", Quote(o.relay)},          {"relay.node_id", std::to_string(o.node_id)},
      {"relay.data_dir", Quote(".")},          {"listen.api", Quote(o.api)},
      {"listen.gateway", Quote(o.gateway)},    {"listen.federation", Quote(o.federation)},
      {"listen.admin", Quote(o.admin)},
  };
  std::string text = conf::ExampleConfig(overrides);
  // Validate before writing anything.
  auto parsed = conf::ParseConfigText(text, config_path);
  if (!parsed.ok()) {
    fprintf(stderr, "chatctl: %s\n", parsed.status().message().c_str());
    return kUsage;
  }
  if (Status s = MakeDirs(dir); !s.ok()) {
    PrintError(s);
    return kFail;
  }
  chmod(dir.c_str(), 0700);
  crypto::KeyPair key = crypto::KeyPair::Generate();
  if (Status s = key.SaveFile(dir + "/" + Relay::kKeyFile); !s.ok()) {
    PrintError(s);
    return kFail;
  }
  if (Status s = WriteFileAtomic(dir + "/" + Relay::kAdminTokenFile, crypto::NewOpaqueToken() + "\n", 0600); !s.ok()) {
    PrintError(s);
    return kFail;
  }
  auto store = store::Store::Open(dir, 1, /*create=*/true);
  if (!store.ok()) {
    PrintError(store.status());
    return kFail;
  }
  auto& w = (*store)->writer();
  for (auto [k, v] : {std::pair<std::string, std::string>{"relay_name", o.relay},
                      {"node_id", std::to_string(o.node_id)},
                      {"public_key", key.public_key().ToString()},
                      {"created_at", Rfc3339Ms(NowMs())}}) {
    if (Status s = w.SetMeta(k, v); !s.ok()) {
      PrintError(s);
      return kFail;
    }
  }
  if (Status s = WriteFileAtomic(config_path, text, 0600); !s.ok()) {
    PrintError(s);
    return kFail;
  }
  printf("created relay %s (node %d) in %s\n  config:     %s\n  public key: %s\n  run it:     chatd --config %s\n",
         o.relay.c_str(), o.node_id, dir.c_str(), config_path.c_str(), key.public_key().ToString().c_str(),
         config_path.c_str());
  return kOk;
}

}  // namespace

void RegisterInit(CLI::App& app, Globals& g) {
  auto opts = std::make_shared<InitOpts>();
  CLI::App* cmd = app.add_subcommand("init", "create a relay: config, key, admin token and an empty store");
  cmd->add_option("--data-dir", opts->data_dir, "directory for the relay's files")->required();
  cmd->add_option("--relay", opts->relay, "relay name, e.g. eu1 ([a-z][a-z0-9-]{0,31})")->required();
  cmd->add_option("--node-id", opts->node_id, "node number 0-1023, unique in the federation")
      ->required()->check(CLI::Range(0, 1023));
  cmd->add_option("--api", opts->api, "REST API listener HOST:PORT");
  cmd->add_option("--gateway", opts->gateway, "WebSocket listener HOST:PORT");
  cmd->add_option("--federation", opts->federation, "federation listener HOST:PORT");
  cmd->add_option("--admin", opts->admin, "admin API listener HOST:PORT");
  cmd->callback([opts, &g] { g.exit_code = RunInit(*opts); });
}

}  // namespace chatd::cli
