// relay/relay.h — the root object of a running chatd: owns the store, the key, the core,
// the worker pool, the gateway and the REST/admin servers, and starts and drains them in
// order. Created and driven by cmd/chatd.cpp's main thread (which also handles signals).
//
// Files in the data directory: chatd.toml, relay.key (0600), admin.token (0600), chatd.db
// (+ WAL), search.db (the full-text index, rebuilt if deleted; store/search.h), and chatd.ports.json, written once every listener is up and removed on a
// clean exit.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>
#include <string>

#include "base/status.h"
#include "conf/config.h"
#include "crypto/keys.h"

namespace chatd {

class Core;
class Gateway;
class Api;
class Workers;
class TokenService;
namespace store {
class Store;
class SearchIndexer;
}

class Relay {
 public:
  static constexpr const char* kKeyFile = "relay.key";
  static constexpr const char* kAdminTokenFile = "admin.token";
  static constexpr const char* kPortsFile = "chatd.ports.json";

  // Loads the key and admin token and opens the (existing) store. Touches nothing else.
  static Result<std::unique_ptr<Relay>> Open(conf::Config cfg);
  ~Relay();

  // Starts every part; ready (/readyz 200) once all listeners are up.
  Status Start();
  // Graceful stop: stop accepting, finish the core's queue, close sessions with a reason.
  void Drain();
  // Applies reloadable keys of a new config (log level, peers). Thread-safe.
  Status Reload(const conf::Config& next);

  std::string api_url() const;
  std::string gateway_url() const;
  int api_port() const;
  int gateway_port() const;
  int admin_port() const;

 private:
  Relay(conf::Config cfg, crypto::KeyPair key);
  Status WritePortsFile();
  Status ApplyPeerKeys(const std::vector<conf::Peer>& peers);

  conf::Config cfg_;
  crypto::KeyPair key_;
  std::string admin_token_;
  std::atomic<bool> ready_{false};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<TokenService> tokens_;
  std::unique_ptr<Core> core_;
  std::unique_ptr<store::SearchIndexer> search_;
  std::unique_ptr<Workers> workers_;
  std::unique_ptr<Gateway> gateway_;
  std::unique_ptr<Api> api_;
  bool drained_ = false;
  std::mutex reload_mu_;
  std::vector<std::string> peer_names_;  // guarded by reload_mu_ after Start
};

// Reads a whole small file (keys, tokens); kNotFound if missing.
Result<std::string> ReadSmallFile(const std::string& path, size_t max_bytes);
// Writes a file atomically (temp + fsync + rename) with the given mode.
Status WriteFileAtomic(const std::string& path, std::string_view data, int mode);

}  // namespace chatd
