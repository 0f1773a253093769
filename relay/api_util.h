// relay/api_util.h — helpers shared by the REST handler files. Internal to relay/.
// Everything here is stateless or thread-safe and runs on httplib pool threads.
#pragma once

#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "base/json.h"
#include "relay/api.h"
#include "relay/files.h"

namespace chatd::api {

// The pinned peers' REST API URLs ([[peers]] api_url), where file blobs are fetched from;
// replaced on reload. Thread-safe.
class PeerApis {
 public:
  void Set(const std::vector<conf::Peer>& peers);
  std::vector<std::pair<std::string, std::string>> Get() const;  // (name, api_url)

 private:
  mutable std::mutex mu_;
  std::vector<std::pair<std::string, std::string>> urls_;  // guarded by mu_
};

struct Ctx {
  ApiDeps d;
  RateLimiter* limiter;
  const std::string* dummy_hash;
  const files::BlobStore* blobs;
  const files::UrlSigner* urls;
  const PeerApis* peers;
};

// {"success":true,"data":<data_json>} with `status`; 204 sends no body.
void Ok(httplib::Response& res, int status, std::string_view data_json);
void NoContent(httplib::Response& res);
// {"success":false,"error":{"code","message"}} with the status's HTTP code (and
// Retry-After / retry_after for rate limits).
void Fail(httplib::Response& res, const Status& st);
// Parses a JSON object body (415 for a non-JSON content type, 400 for malformed JSON).
Status ParseBody(const httplib::Request& req, json::Doc* doc);
// Verifies the bearer access token.
Result<Claims> Authenticate(const Ctx& ctx, const httplib::Request& req);
// An id path parameter (matches[i]); bad_request naming it if malformed.
Result<uint64_t> PathId(const httplib::Request& req, size_t i, const char* name);
// Checks membership through a read connection: 404 for no chat, 403 not_member.
Status RequireMember(store::Queries& q, uint64_t chat_id, uint64_t user_id);
// The client's address for rate limits.
std::string ClientIp(const httplib::Request& req);
// 429 rate_limited: "too many <what>; retry in N s", with retry_after.
Status Limited(int retry_after, const std::string& what);

void RegisterAuthRoutes(httplib::Server& s, Ctx& ctx);
void RegisterChatRoutes(httplib::Server& s, Ctx& ctx);
void RegisterSocialRoutes(httplib::Server& s, Ctx& ctx);
void RegisterKeyRoutes(httplib::Server& s, Ctx& ctx);   // relay/api_keys.cpp: device keys
void RegisterFileRoutes(httplib::Server& s, Ctx& ctx);  // relay/api_files.cpp

// Blobs between relays (relay/api_blobs.cpp): GET /federation/v1/blobs/<sha256> for peers,
// and fetching a file's missing blob from the peers (its origin first), sha256 checked.
void RegisterBlobRoutes(httplib::Server& s, Ctx& ctx);
Status FetchBlob(const Ctx& c, const store::FileRow& f);
// Streams a file from disk as the response body (64 KiB preads; Range is httplib's).
Status StreamBlob(const std::string& path, const std::string& mime, httplib::Response& res);

// Whether a request's body is streamed by its handler (file uploads) rather than read
// whole by httplib; only those may be larger than limits.max_body_bytes.
bool StreamsBody(const httplib::Request& req);

// On its own thread ("chatd-files"), at start and then every 60 s (or api.file_gc_delay if
// shorter): drops resumable uploads past their expires_at (the rows through the core, then
// their chunk directories) and chunk directories whose upload row is gone, and deletes
// content (blobs/) that no file in use needs. Stop() is idempotent.
class FilesJanitor {
 public:
  explicit FilesJanitor(const Ctx* ctx);
  ~FilesJanitor() { Stop(); }
  void Stop();
  // Completed passes, and the content it deleted (for /metrics).
  uint64_t passes() const { return passes_.load(std::memory_order_relaxed); }
  uint64_t blobs_deleted() const { return blobs_deleted_.load(std::memory_order_relaxed); }
  uint64_t blob_bytes_deleted() const { return blob_bytes_deleted_.load(std::memory_order_relaxed); }

 private:
  void Run();
  void Sweep();
  void CollectBlobs();
  const Ctx* c_;
  std::atomic<uint64_t> passes_{0}, blobs_deleted_{0}, blob_bytes_deleted_{0};
  int gc_prefix_ = 0;  // the blobs/ subdirectory the next pass starts at (0..255); janitor thread only
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace chatd::api
