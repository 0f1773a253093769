// relay/api.h — the REST API (/api/v1), health (/livez, /readyz), /metrics, and the admin
// API on its own listener. cpp-httplib servers, each with its own thread pool.
//
// Handlers run on pool threads. They parse and bound their input, read through the store's
// reader pool, do slow CPU work (argon2id) right there, off both event loops, and hand
// every write to the core with Core::Call, answering only after the batch commits.
// Shapes follow PROTOCOL.md: {"success":true,"data":…} or {"success":false,"error":{…}}.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "base/status.h"
#include "conf/config.h"
#include "relay/auth.h"
#include "relay/core.h"
#include "relay/gateway.h"
#include "store/store.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace chatd {

namespace api {
struct Ctx;
class FilesJanitor;
class PeerApis;
}  // namespace api
namespace files {
class BlobStore;
class UrlSigner;
}  // namespace files

class SlowClientGuard;

struct ApiDeps {
  const conf::Config* cfg;
  Core* core;
  store::Store* store;
  TokenService* tokens;
  Gateway* gateway;
  const std::atomic<bool>* ready;
  std::string admin_token;   // the admin API's bearer token
  std::string gateway_url;   // what GET /api/v1/gateway returns
  std::function<Status()> reload;  // re-reads chatd.toml (admin POST /admin/v1/reload)
  store::SearchIndexer* search = nullptr;  // null when store.search is off
  const crypto::KeyPair* key = nullptr;    // the relay key (signed file URLs derive theirs)
};

class Api {
 public:
  explicit Api(ApiDeps deps);
  ~Api();
  // Binds both listeners (port 0 picks a free port) and starts serving.
  Status Start();
  void Stop();
  // The peers' API URLs changed (reload). Thread-safe.
  void SetPeers(const std::vector<conf::Peer>& peers);
  int api_port() const { return api_port_; }
  int admin_port() const { return admin_port_; }

 private:
  struct Handlers;
  void RegisterRoutes();
  void RegisterAdminRoutes();

  ApiDeps d_;
  RateLimiter limiter_;
  std::unique_ptr<api::Ctx> ctx_;  // shared by the route handlers
  std::unique_ptr<files::BlobStore> blobs_;
  std::unique_ptr<files::UrlSigner> urls_;
  std::unique_ptr<api::FilesJanitor> janitor_;
  std::unique_ptr<SlowClientGuard> guard_;
  std::atomic<int> api_busy_{0}, admin_busy_{0};  // busy threads of each server's pool
  std::unique_ptr<api::PeerApis> peers_;
  std::unique_ptr<httplib::Server> server_, admin_;
  std::thread server_thread_, admin_thread_;
  int api_port_ = 0, admin_port_ = 0;
  std::atomic<uint64_t> requests_{0};
  std::string dummy_hash_;  // equalizes login timing for unknown users
};

}  // namespace chatd
