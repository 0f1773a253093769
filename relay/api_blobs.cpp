// Blobs between relays (DESIGN.md §5): a relay that has a file's metadata (a replicated
// file_create) but not its bytes fetches them from a peer's REST API, the file's origin
// first, checks the sha256 and stores the blob, the first time a client downloads it.
//
// GET /federation/v1/blobs/<sha256> is signed by the asking relay: headers X-Chatd-Relay
// (its name), X-Chatd-Time (ms since the epoch, within kSkewMs of ours) and X-Chatd-Signature
// (hex Ed25519 by that relay's key over "chatd-blob-v1\n<relay>\n<sha256>\n<time>"). Only a
// pinned peer's key verifies, and only blobs some file in use names are served.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "base/log.h"
#include "base/time.h"
#include "crypto/bytes.h"
#include "relay/api_util.h"

namespace chatd::api {

namespace {

constexpr int64_t kSkewMs = 5 * 60 * 1000;

std::string BlobRequestText(std::string_view relay, std::string_view sha, std::string_view time) {
  return "chatd-blob-v1\n" + std::string(relay) + "\n" + std::string(sha) + "\n" + std::string(time);
}

Status CheckPeerSignature(const Ctx& c, const httplib::Request& req, const std::string& sha) {
  const std::string relay = req.get_header_value("X-Chatd-Relay");
  const std::string time = req.get_header_value("X-Chatd-Time");
  auto key = c.d.tokens->KeyOf(relay);
  if (relay.empty() || !key || relay == c.d.cfg->relay_name) return Forbidden("not a pinned peer");
  auto t = json::ParseId(time);
  if (!t || std::llabs(static_cast<int64_t>(*t) - NowMs()) > kSkewMs) {
    return Forbidden("X-Chatd-Time is missing or too far from this relay's clock");
  }
  auto sig = crypto::HexDecode(req.get_header_value("X-Chatd-Signature"));
  std::string text = BlobRequestText(relay, sha, time);
  if (!sig.ok() || !crypto::VerifySignature(*key, {reinterpret_cast<const uint8_t*>(text.data()), text.size()}, *sig)) {
    return Forbidden("the request's signature does not verify with peer '" + relay + "'s key");
  }
  return Status::Ok();
}

}  // namespace

void PeerApis::Set(const std::vector<conf::Peer>& peers) {
  std::vector<std::pair<std::string, std::string>> urls;
  for (const conf::Peer& p : peers) {
    if (!p.api_url.empty()) urls.emplace_back(p.name, p.api_url);
  }
  std::lock_guard<std::mutex> lock(mu_);
  urls_ = std::move(urls);
}

std::vector<std::pair<std::string, std::string>> PeerApis::Get() const {
  std::lock_guard<std::mutex> lock(mu_);
  return urls_;
}

Status FetchBlob(const Ctx& c, const store::FileRow& f) {
  // The size comes from a peer's envelope: never fetch more than this relay would accept
  // from its own users, whatever a peer announced.
  if (f.file_size > static_cast<uint64_t>(c.d.cfg->max_file_bytes)) {
    return Status(Code::kUnavailable, "the file's content is not on this relay, and at " + std::to_string(f.file_size) +
                                          " bytes it is larger than this relay's limits.max_file_bytes (" +
                                          std::to_string(c.d.cfg->max_file_bytes) + ")");
  }
  auto peers = c.peers->Get();
  // The origin first: it has every blob its files name.
  std::stable_partition(peers.begin(), peers.end(), [&](const auto& p) { return p.first == f.origin; });
  const std::string path = "/federation/v1/blobs/" + f.sha256;
  Status last = Status(Code::kUnavailable, "the file's content is not on this relay yet (it was uploaded at relay '" +
                                               f.origin + "', and no peer with an api_url is configured)");
  for (const auto& [name, url] : peers) {
    auto w = c.blobs->NewWriter(f.file_size);
    if (!w.ok()) return w.status();
    const std::string time = std::to_string(NowMs());
    const std::string text = BlobRequestText(c.d.cfg->relay_name, f.sha256, time);
    auto sig = c.d.key->Sign({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
    httplib::Headers headers = {
        {"X-Chatd-Relay", c.d.cfg->relay_name}, {"X-Chatd-Time", time}, {"X-Chatd-Signature", crypto::HexEncode(sig)}};
    httplib::Client cli(url);
    cli.set_connection_timeout(3, 0);
    cli.set_read_timeout(30, 0);
    int status = 0;
    Status wrote;
    auto res = cli.Get(
        path, headers,
        [&](const httplib::Response& r) {
          status = r.status;
          return r.status == 200;
        },
        [&](const char* data, size_t n) {
          wrote = (*w)->Write(data, n);
          return wrote.ok();
        });
    if (!res || status != 200 || !wrote.ok()) {
      last =
          Status(Code::kUnavailable,
                 "the file's content is not on this relay yet, and peer '" + name + "' did not provide it (" +
                     (res ? "HTTP " + std::to_string(status) : httplib::to_string(res.error())) + "); try again later");
      continue;
    }
    auto sha = (*w)->Commit(f.sha256);
    if (sha.ok()) {
      log::Info("files: fetched a blob from a peer", {{"peer", name}, {"sha256", f.sha256}});
      return Status::Ok();
    }
    log::Warn("files: a peer's blob does not match its sha256", {{"peer", name}, {"sha256", f.sha256}});
    last = Status(Code::kUnavailable, "peer '" + name + "' sent content that does not match the file's sha256");
  }
  return last;
}

void RegisterBlobRoutes(httplib::Server& s, Ctx& ctx) {
  Ctx* c = &ctx;
  s.Get(R"(/federation/v1/blobs/([0-9a-f]{64}))", [c](const httplib::Request& req, httplib::Response& res) {
    const std::string sha = req.matches[1].str();
    if (Status st = CheckPeerSignature(*c, req, sha); !st.ok()) return Fail(res, st);
    {
      auto lease = c->d.store->readers().Acquire();
      if (!lease.ok()) return Fail(res, lease.status());
      const int64_t now = NowMs();
      auto named = (*lease)->q().ContentInUse(sha, now, files::UnsentSince(now, c->d.cfg->unsent_file_ttl_s));
      if (!named.ok()) return Fail(res, named.status());
      if (!named.value()) return Fail(res, NotFound("no file in use has this content"));
    }
    if (!c->blobs->Has(sha)) return Fail(res, NotFound("this relay does not have this content either"));
    if (Status st = StreamBlob(c->blobs->BlobPath(sha), "application/octet-stream", res); !st.ok()) Fail(res, st);
  });
}

}  // namespace chatd::api
