#include "relay/relay.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/json.h"
#include "base/log.h"
#include "relay/api.h"
#include "relay/auth.h"
#include "relay/core.h"
#include "relay/gateway.h"
#include "relay/workers.h"
#include "store/store.h"

namespace chatd {

Result<std::string> ReadSmallFile(const std::string& path, size_t max_bytes) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound(path + ": no such file");
    return IoError(path + ": " + strerror(errno));
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      close(fd);
      return IoError(path + ": " + strerror(errno));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) {
      close(fd);
      return IoError(path + ": file too large");
    }
  }
  close(fd);
  return out;
}

Status WriteFileAtomic(const std::string& path, std::string_view data, int mode) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return IoError(tmp + ": " + strerror(errno));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      close(fd);
      unlink(tmp.c_str());
      return IoError(tmp + ": " + strerror(errno));
    }
    off += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    unlink(tmp.c_str());
    return IoError(tmp + ": " + strerror(errno));
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    unlink(tmp.c_str());
    return IoError(path + ": " + strerror(errno));
  }
  return Status::Ok();
}

Relay::Relay(conf::Config cfg, crypto::KeyPair key) : cfg_(std::move(cfg)), key_(std::move(key)) {}

Relay::~Relay() { Drain(); }

Result<std::unique_ptr<Relay>> Relay::Open(conf::Config cfg) {
  const std::string dir = cfg.data_dir;
  auto key = crypto::KeyPair::LoadFile(dir + "/" + kKeyFile);
  if (!key.ok()) return Status(key.status().code(), "relay key: " + key.status().message());
  auto token = ReadSmallFile(dir + "/" + kAdminTokenFile, 1024);
  if (!token.ok()) return Status(token.status().code(), "admin token: " + token.status().message());
  struct stat st {};
  if (::stat((dir + "/" + store::Store::kFileName).c_str(), &st) != 0) {
    return NotFound("no store in " + dir + " (run `chatctl init` first)");
  }
  std::unique_ptr<Relay> relay(new Relay(std::move(cfg), std::move(key.value())));
  std::string t = *token;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  relay->admin_token_ = t;
  auto store = store::Store::Open(dir, relay->cfg_.read_connections, /*create=*/false);
  if (!store.ok()) return store.status();
  relay->store_ = std::move(store.value());
  auto name = relay->store_->writer().Meta("relay_name");
  if (name.ok() && name.value() && *name.value() != relay->cfg_.relay_name) {
    return BadRequest("the store belongs to relay '" + *name.value() + "', but the config says '" +
                      relay->cfg_.relay_name + "'");
  }
  return relay;
}

Status Relay::Start() {
  log::Level level;
  if (log::ParseLevel(cfg_.log_level, &level)) log::SetLevel(level);
  tokens_ = std::make_unique<TokenService>(cfg_.relay_name, key_, cfg_.access_token_ttl_s);
  tokens_->SetHomeLookup([this](uint64_t user_id) -> std::optional<std::string> {
    auto lease = store_->readers().Acquire();
    if (!lease.ok()) return std::nullopt;
    auto u = (*lease)->q().UserById(user_id);
    if (!u.ok() || !u.value()) return std::nullopt;
    return u.value()->relay;
  });
  Status ks = ApplyPeerKeys(cfg_.peers);
  if (!ks.ok()) return ks;
  // Disabled users and revoked tokens, for every token check (kept current by the core).
  ks = LoadRevocations(store_->writer(), SystemClock::Get().NowMs(), &tokens_->revocations());
  if (!ks.ok()) return ks;
  core_ = std::make_unique<Core>(cfg_, *store_, key_);
  core_->SetRevocations(&tokens_->revocations());
  core_->SetReplicate(!cfg_.peers.empty());
  if (cfg_.search) {
    search_ = std::make_unique<store::SearchIndexer>(cfg_.data_dir, [core = core_.get()] { return core->CommittedPos(); });
    core_->SetOnDurable([search = search_.get()] { search->Notify(); });
  }
  store_->StartCheckpointer(int64_t{cfg_.wal_max_mb} << 20);
  Status s = core_->Start();
  if (!s.ok()) return s;
  if (search_) {
    if (s = search_->Start(); !s.ok()) return s;
  }
  workers_ = std::make_unique<Workers>(store_->readers(), 2);
  auto max_pos = store_->writer().MaxPos();
  if (!max_pos.ok()) return max_pos.status();
  gateway_ = std::make_unique<Gateway>(cfg_, *core_, *tokens_, *workers_, *max_pos);
  core_->SetSink(gateway_.get());
  s = gateway_->Start();
  if (!s.ok()) return s;
  ApiDeps deps{&cfg_, core_.get(), store_.get(), tokens_.get(), gateway_.get(), &ready_, admin_token_, "", {}};
  deps.gateway_url = gateway_url();
  deps.search = search_.get();
  deps.key = &key_;
  deps.reload = [this] {
    auto next = conf::LoadConfig(cfg_.config_path);
    if (!next.ok()) return next.status();
    return Reload(next.value());
  };
  api_ = std::make_unique<Api>(deps);
  s = api_->Start();
  if (!s.ok()) return s;
  s = WritePortsFile();
  if (!s.ok()) return s;
  ready_ = true;
  log::Info("chatd ready", {{"relay", cfg_.relay_name},
                            {"node_id", cfg_.node_id},
                            {"api", api_url()},
                            {"gateway", gateway_url()},
                            {"admin_port", admin_port()},
                            {"recovering", core_->Recovering()}});
  return Status::Ok();
}

void Relay::Drain() {
  if (drained_) return;
  drained_ = true;
  ready_ = false;
  log::Info("draining: refusing new connections and requests");
  if (gateway_) gateway_->BeginDrain();
  if (api_) api_->Stop();          // in-flight REST calls finish (their core work is queued)
  if (core_) core_->Stop();        // runs and commits everything queued; acks go to the gateway
  if (gateway_) gateway_->Stop();  // flushes the acks, closes sessions with 1001
  if (workers_) workers_->Stop();
  if (store_) store_->readers().CloseIdle();  // nothing reads now; the indexer closes search.db last
  if (search_) search_->Stop();
  if (store_) store_->StopCheckpointer();
  unlink((cfg_.data_dir + "/" + kPortsFile).c_str());
  log::Info("drained; bye");
}

Status Relay::ApplyPeerKeys(const std::vector<conf::Peer>& peers) {
  std::vector<std::pair<std::string, crypto::PublicKey>> keys;
  for (const conf::Peer& p : peers) {
    auto k = crypto::ParsePublicKey(p.key);
    if (!k.ok()) return BadRequest("peer '" + p.name + "': " + k.status().message());
    keys.emplace_back(p.name, *k);
  }
  for (const std::string& old : peer_names_) tokens_->RemoveRelayKey(old);
  peer_names_.clear();
  for (auto& [name, key] : keys) {
    tokens_->AddRelayKey(name, key);
    peer_names_.push_back(name);
  }
  return Status::Ok();
}

Status Relay::Reload(const conf::Config& next) {
  std::lock_guard<std::mutex> lock(reload_mu_);
  log::Level level;
  if (log::ParseLevel(next.log_level, &level)) log::SetLevel(level);
  if (tokens_ && gateway_) {
    Status s = ApplyPeerKeys(next.peers);
    if (!s.ok()) return s;
    if (!next.peers.empty()) core_->SetReplicate(true);
    core_->SetRecoveryPeers(next.peers);
    gateway_->SetPeers(next.peers);
    if (api_) api_->SetPeers(next.peers);
  }
  log::Info("config reloaded", {{"log_level", next.log_level}, {"peers", static_cast<int64_t>(next.peers.size())}});
  for (auto key : conf::RestartRequired(cfg_, next)) {
    log::Warn("config change needs a restart", {{"key", std::string(key)}});
  }
  return Status::Ok();
}

int Relay::api_port() const { return api_ ? api_->api_port() : 0; }
int Relay::admin_port() const { return api_ ? api_->admin_port() : 0; }
int Relay::gateway_port() const { return gateway_ ? gateway_->port() : 0; }

std::string Relay::api_url() const {
  if (!cfg_.public_api_url.empty()) return cfg_.public_api_url;
  return "http://" + cfg_.api.host + ":" + std::to_string(api_port());
}

std::string Relay::gateway_url() const {
  if (!cfg_.public_gateway_url.empty()) return cfg_.public_gateway_url;
  return "ws://" + cfg_.gateway.host + ":" + std::to_string(gateway_port()) + "/ws";
}

Status Relay::WritePortsFile() {
  auto hp = [](const std::string& host, int port) { return host + ":" + std::to_string(port); };
  json::JsonWriter w;
  w.BeginObject();
  w.Key("api").Str(hp(cfg_.api.host, api_port()));
  w.Key("gateway").Str(hp(cfg_.gateway.host, gateway_port()));
  w.Key("federation").Str(hp(cfg_.federation.host, gateway_->federation_port()));
  w.Key("admin").Str(hp(cfg_.admin.host, admin_port()));
  w.Key("pid").Int(getpid());
  w.EndObject();
  std::string text = w.Take() + "\n";
  return WriteFileAtomic(cfg_.data_dir + "/" + kPortsFile, text, 0644);
}

}  // namespace chatd
