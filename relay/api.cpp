// REST server setup, shared helpers, health and metrics (the admin API: relay/api_admin.cpp).
#include "relay/api.h"

#include <httplib.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <vector>

#include "base/log.h"
#include "crypto/bytes.h"
#include "crypto/password.h"
#include "relay/api_util.h"
#include "relay/slow_clients.h"

namespace chatd {

namespace api {

void Ok(httplib::Response& res, int status, std::string_view data_json) {
  res.status = status;
  std::string body;
  body.reserve(data_json.size() + 32);
  body += "{\"success\":true,\"data\":";
  body += data_json;
  body += "}";
  res.set_content(body, "application/json; charset=utf-8");
}

void NoContent(httplib::Response& res) { res.status = 204; }

void Fail(httplib::Response& res, const Status& st) {
  // rate_limited always says when to retry; unavailable when the relay knows (recovering).
  const bool retry = st.code() == Code::kRateLimited || (st.code() == Code::kUnavailable && st.retry_after > 0);
  json::JsonWriter w;
  w.BeginObject().Key("success").Bool(false).Key("error").BeginObject();
  w.Key("code").Str(st.wire_code()).Key("message").Str(st.message());
  if (retry) w.Key("retry_after").Int(st.retry_after);
  w.EndObject();
  if (retry) w.Key("retry_after").Int(st.retry_after);
  w.EndObject();
  res.status = st.http_status();
  if (retry) res.set_header("Retry-After", std::to_string(st.retry_after));
  if (st.code() == Code::kUnauthorized) res.set_header("WWW-Authenticate", "Bearer");
  res.set_content(w.Take(), "application/json; charset=utf-8");
}

Status ParseBody(const httplib::Request& req, json::Doc* doc) {
  std::string ct = req.get_header_value("Content-Type");
  // Lenient: curl's default form type is accepted as long as the body is JSON.
  if (ct.rfind("multipart/", 0) == 0 || ct.rfind("text/html", 0) == 0) {
    return Status(Code::kUnsupported, "the body must be JSON (Content-Type: application/json)");
  }
  if (req.body.empty()) return BadRequest("a JSON body is required");
  return json::Parse(req.body, doc);
}

Result<Claims> Authenticate(const Ctx& ctx, const httplib::Request& req) {
  std::string h = req.get_header_value("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (h.size() <= kBearer.size() || h.compare(0, kBearer.size(), kBearer) != 0) {
    return Unauthorized("an Authorization: Bearer <access_token> header is required");
  }
  return ctx.d.tokens->Verify(std::string_view(h).substr(kBearer.size()));
}

Result<uint64_t> PathId(const httplib::Request& req, size_t i, const char* name) {
  if (req.matches.size() <= i) return BadRequest(std::string("missing ") + name);
  auto id = json::ParseId(req.matches[i].str());
  if (!id) return BadRequest(std::string(name) + " must be an id (a decimal string)");
  return *id;
}

Status Limited(int retry_after, const std::string& what) {
  Status st(Code::kRateLimited, "too many " + what + "; retry in " + std::to_string(retry_after) + " s");
  st.retry_after = retry_after;
  return st;
}

Status RequireMember(store::Queries& q, uint64_t chat_id, uint64_t user_id) {
  auto role = q.RoleOf(chat_id, user_id);
  if (!role.ok()) return role.status();
  if (role.value()) return Status::Ok();
  auto chat = q.Chat(chat_id, false);
  if (chat.ok() && !chat.value()) return NotFound("no such chat");
  return Forbidden("you are not a member of this chat", "not_member");
}

std::string ClientIp(const httplib::Request& req) { return req.remote_addr; }

}  // namespace api

Api::Api(ApiDeps deps) : d_(std::move(deps)) {
  // A real hash at the configured cost, so a login for an unknown user costs the same.
  crypto::PasswordParams params{static_cast<uint64_t>(d_.cfg->argon2_ops),
                                static_cast<size_t>(d_.cfg->argon2_mem_kib) * 1024};
  auto h = crypto::HashPassword(crypto::Base64UrlEncode(crypto::RandomBytes(24)), params);
  dummy_hash_ = h.ok() ? *h : std::string();
}

Api::~Api() { Stop(); }

namespace {

// Multipart headers, boundaries and the chat_id part around an uploaded file.
constexpr size_t kMultipartSlack = 64 * 1024;

// `max_payload`: the largest body httplib reads (a bigger Content-Length gets 413 and is
// skipped); JSON bodies are held to limits.max_body_bytes by the API's pre-routing handler.
// httplib's ThreadPool, counting its busy threads for SlowClientGuard (relay/slow_clients.h).
class ApiPool : public httplib::TaskQueue {
 public:
  ApiPool(int threads, std::atomic<int>* busy) : busy_(busy) {
    for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { Work(); });
  }
  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.push_back(std::move(fn));
    }
    cv_.notify_one();
  }
  void shutdown() override {  // runs what is queued, then joins
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

 private:
  void Work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty()) return;  // stopping, and nothing left
        fn = std::move(jobs_.front());
        jobs_.pop_front();
      }
      busy_->fetch_add(1, std::memory_order_relaxed);
      fn();
      busy_->fetch_sub(1, std::memory_order_relaxed);
    }
  }
  std::atomic<int>* busy_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;  // guarded by mu_
  bool stop_ = false;                       // guarded by mu_
};

void ConfigureServer(httplib::Server& s, int threads, size_t max_payload, std::atomic<int>* busy) {
  s.new_task_queue = [threads, busy] { return new ApiPool(threads, busy); };
  s.set_payload_max_length(max_payload);
  s.set_read_timeout(10, 0);
  s.set_write_timeout(10, 0);
  // cpp-httplib gives each connection a pool thread for as long as it is open, so an idle
  // kept-alive (or silent) connection holds one until this timeout: with 30 s, api.threads
  // idle clients stalled every other request for 30 s.
  s.set_keep_alive_timeout(2);
  // httplib sends a response's head and body in two send()s: with Nagle on, the body of
  // every response after the first on a kept-alive connection waited for the client's
  // delayed ACK (~40 ms).
  s.set_tcp_nodelay(true);
  s.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    Status st;
    switch (res.status) {
      case 404: st = NotFound("no such endpoint"); break;
      case 405: st = Status(Code::kBadRequest, "method not allowed"); break;
      case 413: st = TooLarge("request body too large"); break;
      case 400: st = BadRequest("malformed request"); break;
      default: st = Status(res.status >= 500 ? Code::kInternal : Code::kBadRequest, "request failed");
    }
    int status = res.status;
    api::Fail(res, st);
    res.status = status;
    return httplib::Server::HandlerResponse::Handled;
  }));
  s.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    log::Error("api: handler threw", {{"path", req.path}, {"error", what}});
    api::Fail(res, Internal("internal error"));
  });
}

Status Listen(httplib::Server& s, const conf::HostPort& hp, int* port, std::thread* th, const char* name) {
  int p = hp.port == 0 ? s.bind_to_any_port(hp.host) : (s.bind_to_port(hp.host, hp.port) ? hp.port : -1);
  if (p <= 0) return IoError(std::string(name) + ": cannot listen on " + hp.ToString());
  *port = p;
  *th = std::thread([&s, name] {
    pthread_setname_np(pthread_self(), name);
    s.listen_after_bind();
  });
  return Status::Ok();
}

}  // namespace

Status Api::Start() {
  server_ = std::make_unique<httplib::Server>();
  admin_ = std::make_unique<httplib::Server>();
  const conf::Config& cfg = *d_.cfg;
  // File uploads stream bodies up to limits.max_file_bytes (relay/api_files.cpp).
  size_t max_upload =
      std::max(static_cast<size_t>(cfg.max_file_bytes) + kMultipartSlack, static_cast<size_t>(cfg.upload_chunk_bytes));
  ConfigureServer(*server_, cfg.api_threads, std::max(static_cast<size_t>(cfg.max_body_bytes), max_upload), &api_busy_);
  ConfigureServer(*admin_, 2, static_cast<size_t>(cfg.max_body_bytes), &admin_busy_);
  blobs_ = std::make_unique<files::BlobStore>(cfg.data_dir);
  if (Status s = blobs_->Init(); !s.ok()) return s;
  if (!d_.key) return Internal("the API needs the relay key");
  urls_ = std::make_unique<files::UrlSigner>(d_.key->DeriveKey("chatd file url v1"));
  RegisterRoutes();
  RegisterAdminRoutes();
  janitor_ = std::make_unique<api::FilesJanitor>(ctx_.get());
  Status s = Listen(*server_, d_.cfg->api, &api_port_, &server_thread_, "chatd-api");
  if (!s.ok()) return s;
  guard_ = std::make_unique<SlowClientGuard>(api_port_, cfg.api_threads, &api_busy_);
  return Listen(*admin_, d_.cfg->admin, &admin_port_, &admin_thread_, "chatd-admin");
}

void Api::Stop() {
  if (server_) server_->stop();
  if (admin_) admin_->stop();
  if (server_thread_.joinable()) server_thread_.join();
  if (admin_thread_.joinable()) admin_thread_.join();
  if (janitor_) janitor_->Stop();
  if (guard_) guard_->Stop();
}

void Api::SetPeers(const std::vector<conf::Peer>& peers) {
  if (peers_) peers_->Set(peers);
}

void Api::RegisterRoutes() {
  peers_ = std::make_unique<api::PeerApis>();
  peers_->Set(d_.cfg->peers);
  ctx_ = std::make_unique<api::Ctx>(api::Ctx{d_, &limiter_, &dummy_hash_, blobs_.get(), urls_.get(), peers_.get()});
  api::Ctx* ctx = ctx_.get();
  httplib::Server& s = *server_;
  // Runs before httplib reads a body: only the upload routes stream theirs, so every other
  // body is held to limits.max_body_bytes here (httplib's own bound is the upload size).
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    requests_++;
    if (api::StreamsBody(req)) return httplib::Server::HandlerResponse::Unhandled;
    if (req.has_header("Content-Length") && std::strtoull(req.get_header_value("Content-Length").c_str(), nullptr, 10) >
                                                static_cast<uint64_t>(d_.cfg->max_body_bytes)) {
      res.set_header("Connection", "close");
      api::Fail(res, TooLarge("request body too large"));
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!req.has_header("Content-Length") && req.has_header("Transfer-Encoding")) {
      res.set_header("Connection", "close");
      api::Fail(res, BadRequest("a Content-Length is required (chunked bodies are accepted only by file uploads)"));
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  s.Get("/livez", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("{\"status\":\"ok\"}", "application/json");
  });
  s.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    if (!d_.ready->load()) {
      res.status = 503;
      res.set_content("{\"status\":\"starting\"}", "application/json");
      return;
    }
    if (d_.core->Recovering()) {  // taking its own envelopes back from its peers: no writes
      json::JsonWriter w;
      w.BeginObject().Key("status").Str("recovering").Key("reason").Str(d_.core->RecoveryStatus().reason).EndObject();
      res.status = 503;
      res.set_content(w.Take(), "application/json");
      return;
    }
    res.set_content("{\"status\":\"ready\"}", "application/json");
  });
  s.Get("/api/v1/gateway", [this, ctx](const httplib::Request& req, httplib::Response& res) {
    auto claims = api::Authenticate(*ctx, req);
    if (!claims.ok()) return api::Fail(res, claims.status());
    json::JsonWriter w;
    w.BeginObject().Key("url").Str(d_.gateway_url).EndObject();
    api::Ok(res, 200, w.View());
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    const GatewayStats& g = d_.gateway->stats();
    CoreStats c = d_.core->stats();
    std::string out;
    auto metric = [&out](const char* name, const char* type, const char* help, uint64_t v) {
      out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
             std::to_string(v) + "\n";
    };
    // The fdatasync rounds as a Prometheus histogram (cumulative buckets, +Inf, sum, count).
    auto histogram = [&out](const char* name, const char* help, const CoreStats& st) {
      out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " histogram\n";
      char le[32];
      for (size_t i = 0; i < kSyncBuckets; ++i) {
        snprintf(le, sizeof le, "%g", kSyncBucketsS[i]);
        out += std::string(name) + "_bucket{le=\"" + le + "\"} " + std::to_string(st.sync_le[i]) + "\n";
      }
      out += std::string(name) + "_bucket{le=\"+Inf\"} " + std::to_string(st.syncs) + "\n";
      snprintf(le, sizeof le, "%.6f", st.sync_seconds);
      out += std::string(name) + "_sum " + le + "\n" + name + "_count " + std::to_string(st.syncs) + "\n";
    };
    metric("chatd_sessions", "gauge", "Open WebSocket sessions.", g.sessions.load());
    metric("chatd_sessions_authenticated", "gauge", "Authenticated WebSocket sessions.", g.authenticated.load());
    metric("chatd_ws_accepted_total", "counter", "WebSocket connections accepted.", g.accepted.load());
    metric("chatd_ws_frames_in_total", "counter", "Client frames received.", g.frames_in.load());
    metric("chatd_ws_frames_out_total", "counter", "Frames sent to clients.", g.frames_out.load());
    metric("chatd_ws_bytes_out_total", "counter", "Bytes sent to clients.", g.bytes_out.load());
    metric("chatd_ws_writes_total", "counter", "Coalesced socket writes.", g.writes.load());
    metric("chatd_ws_bad_frames_total", "counter", "Client frames answered with an error.", g.bad_frames.load());
    metric("chatd_ws_slow_consumers_total", "counter", "Sessions closed for exceeding their queue cap.",
           g.slow_consumers.load());
    metric("chatd_core_batches_total", "counter", "Group-commit batches.", c.batches);
    metric("chatd_core_commands_total", "counter", "Commands processed by the core.", c.commands);
    metric("chatd_envelopes_total", "counter", "Envelopes appended to the log.", c.envelopes);
    metric("chatd_commit_failures_total", "counter", "Batches that failed to commit.", c.commit_failures);
    metric("chatd_expired_total", "counter", "Envelopes of disappearing messages erased.", c.expired);
    metric("chatd_last_seen_saved_total", "counter", "Last-seen times of this relay's users stored.",
           c.last_seen_saved);
    metric("chatd_store_wal_frames", "gauge", "Frames (pages) in the store's WAL after the last commit.",
           d_.store->wal_frames());
    metric("chatd_store_wal_resets_total", "counter", "Times the store's WAL started over from its beginning.",
           d_.store->wal_resets());
    metric("chatd_http_requests_total", "counter", "REST requests.", requests_.load());
    if (guard_) {
      metric("chatd_api_slow_clients_closed_total", "counter",
             "REST connections closed while every API thread was busy, for moving under 1 KiB in 10 s.",
             guard_->closed());
    }
    if (janitor_) {
      metric("chatd_files_janitor_passes_total", "counter",
             "Passes of the files janitor (expired uploads, content no file in use needs).", janitor_->passes());
      metric("chatd_blobs_deleted_total", "counter", "File contents (blobs/) deleted: no file in use needed them.",
             janitor_->blobs_deleted());
      metric("chatd_blob_bytes_deleted_total", "counter", "Bytes of the file contents deleted.",
             janitor_->blob_bytes_deleted());
    }
    histogram("chatd_sync_seconds",
              "Duration of each fdatasync round of the log (every acknowledgement waits for one).", c);
    if (d_.search) {
      metric("chatd_search_indexed_pos", "gauge", "Log position the search index has reached.",
             d_.search->indexed_pos());
      metric("chatd_search_lag", "gauge", "Durable log positions not yet in the search index.", d_.search->lag());
      metric("chatd_search_messages_indexed_total", "counter", "Message texts (re)indexed.",
             d_.search->messages_indexed());
      metric("chatd_search_failures_total", "counter", "Indexing transactions that failed.", d_.search->failures());
    }
    metric("chatd_federation_applied_total", "counter", "Envelopes from peers applied.", c.remote_applied);
    metric("chatd_federation_duplicates_total", "counter", "Envelopes from peers already known.", c.remote_duplicates);
    metric("chatd_federation_buffered", "gauge", "Envelopes from peers waiting for predecessors.", c.remote_buffered);
    metric("chatd_federation_invalid_total", "counter", "Envelopes logged but invalid for the views.", c.remote_invalid);
    metric("chatd_federation_equivocations_total", "counter", "Equivocating envelopes refused.", c.equivocations);
    metric("chatd_recovering", "gauge",
           "1 while the relay takes its own envelopes back from its peers (restored or rolled back) and "
           "originates nothing.",
           d_.core->Recovering() ? 1 : 0);
    // Per peer, from the gateway's federation state.
    json::Doc fed;
    if (json::Parse(d_.gateway->FederationStatus(), &fed).ok() && fed.HasMember("peers") && fed["peers"].IsArray()) {
      if (fed.HasMember("refused_envelopes") && fed["refused_envelopes"].IsInt64()) {
        metric("chatd_federation_refused_total", "counter", "Envelopes refused (bad signature, unknown origin).",
               static_cast<uint64_t>(fed["refused_envelopes"].GetInt64()));
      }
      std::string up = "# HELP chatd_federation_peer_connected 1 if the link to the peer is up.\n"
                       "# TYPE chatd_federation_peer_connected gauge\n";
      std::string lag = "# HELP chatd_federation_peer_lag_envelopes Envelopes the peer lacks.\n"
                        "# TYPE chatd_federation_peer_lag_envelopes gauge\n";
      std::string lag_s = "# HELP chatd_federation_peer_lag_seconds Seconds since the peer last had everything.\n"
                          "# TYPE chatd_federation_peer_lag_seconds gauge\n";
      for (const auto& p : fed["peers"].GetArray()) {
        if (!p.IsObject() || !p.HasMember("name") || !p["name"].IsString()) continue;
        std::string label = std::string("{peer=\"") + p["name"].GetString() + "\"} ";
        up += "chatd_federation_peer_connected" + label + (p["connected"].IsTrue() ? "1" : "0") + "\n";
        lag += "chatd_federation_peer_lag_envelopes" + label + std::to_string(p["lag_envelopes"].GetInt64()) + "\n";
        lag_s += "chatd_federation_peer_lag_seconds" + label + std::to_string(p["lag_seconds"].GetInt64()) + "\n";
      }
      out += up + lag + lag_s;
    }
    res.set_content(out, "text/plain; version=0.0.4");
  });
  api::RegisterAuthRoutes(s, *ctx);
  api::RegisterChatRoutes(s, *ctx);
  api::RegisterSocialRoutes(s, *ctx);
  api::RegisterKeyRoutes(s, *ctx);
  api::RegisterFileRoutes(s, *ctx);
  api::RegisterBlobRoutes(s, *ctx);
}

}  // namespace chatd
