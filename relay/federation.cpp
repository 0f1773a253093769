#include "relay/federation.h"

#include <libwebsockets.h>

#include <algorithm>
#include <cstring>
#include <deque>

#include "base/json.h"
#include "base/log.h"
#include "base/time.h"
#include "crypto/bytes.h"

namespace chatd {

namespace {

constexpr size_t kMaxMessage = 8 * 1024 * 1024;
constexpr size_t kBatchBytes = 256 * 1024;
constexpr int kStreamPage = 500;
constexpr uint64_t kAckEvery = 1024;  // envelopes processed between acks (window: Federation::kWindow)
constexpr int64_t kMaxBackoffMs = 30000;
constexpr int64_t kRewindAfterMs = 3000;
constexpr const char* kContext = "chatd-federation-v1\n";

std::string SignedText(const std::string& challenge, const std::string& signer, const std::string& other) {
  return std::string(kContext) + challenge + "\n" + signer + "\n" + other;
}

std::string VectorJson(const std::vector<std::pair<std::string, uint64_t>>& v) {
  json::JsonWriter w;
  w.BeginObject();
  for (const auto& [o, s] : v) w.Key(o).Int(static_cast<int64_t>(s));
  w.EndObject();
  return w.Take();
}

}  // namespace

struct Link {
  uint64_t id = 0;
  lws* wsi = nullptr;
  bool outbound = false;
  std::string peer;  // expected (outbound) or announced (inbound, after hello)
  std::string my_challenge, their_challenge;
  bool verified = false, ready = false, closing = false, sent_auth = false;
  std::deque<std::string> control;
  std::deque<std::string> out;  // binary messages of length-prefixed envelopes
  std::map<std::string, uint64_t> next, their, max_offered;
  // The peer says (in its vector or acks) that it is recovering its own log after a restore
  // or a rollback: its own origin is streamed back to it too (normally it never is).
  bool peer_recovering = false;
  bool sent_recovering = false;  // what our last vector or ack said about us
  std::map<std::string, bool> streaming;
  std::map<std::string, int64_t> stalled_since;
  // received: envelopes that arrived; processed: those the core has taken (applied, buffered
  // or dropped) or that were refused. Acks carry `processed`, so the sender's window bounds
  // everything still waiting here (decoded, being verified, queued for the core), not only
  // what is on the wire: a relay catching up on millions of envelopes holds ~kWindow of them.
  uint64_t sent = 0, acked_n = 0, received = 0, processed = 0, last_ack_n = 0;
  std::vector<std::pair<std::string, uint64_t>> last_ack_v;  // our vector in the last ack
  std::string rx;
  int64_t opened_ms = 0;
  std::string close_reason;
};

Federation::Federation(const conf::Config& cfg, Core& core, TokenService& keys, Workers& workers,
                       std::function<void(std::function<void()>)> post_to_gateway)
    : cfg_(cfg), core_(core), keys_(keys), workers_(workers), post_(std::move(post_to_gateway)) {}

Federation::~Federation() {
  for (auto& [id, l] : by_id_) delete l;
}

void Federation::Start(lws_context* context, lws_vhost* vhost, uv_loop_t* loop) {
  context_ = context;
  vhost_ = vhost;
  uv_timer_init(loop, &timer_);
  timer_.data = this;
  uv_timer_start(&timer_, &Federation::OnTimer, 200, 500);
  timer_started_ = true;
}

void Federation::Stop() {
  if (timer_started_) {
    uv_timer_stop(&timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
    timer_started_ = false;
  }
  for (auto& [id, l] : by_id_) {
    l->closing = true;
    l->close_reason = "relay shutting down";
    if (l->wsi) lws_callback_on_writable(l->wsi);
  }
}

void Federation::OnTimer(uv_timer_t* t) { static_cast<Federation*>(t->data)->Tick(); }

Federation::PeerState* Federation::PeerOf(const std::string& name) {
  auto it = peers_.find(name);
  return it == peers_.end() ? nullptr : &it->second;
}

void Federation::SetPeers(const std::vector<conf::Peer>& peers) {
  std::map<std::string, PeerState> next;
  for (const conf::Peer& p : peers) {
    auto it = peers_.find(p.name);
    PeerState st = it != peers_.end() ? it->second : PeerState{};
    bool key_changed = it != peers_.end() && it->second.conf.key != p.key;
    st.conf = p;
    if (key_changed && st.link) CloseLink(st.link, "peer key changed");
    next[p.name] = std::move(st);
  }
  for (auto& [name, st] : peers_) {
    if (!next.count(name) && st.link) CloseLink(st.link, "peer removed");
  }
  peers_ = std::move(next);
  // A newly pinned peer is dialed now rather than at the next tick (up to 500 ms later), so
  // healing a partition or adding a region starts at once.
  if (context_) {
    int64_t now = MonoMs();
    for (auto& [name, p] : peers_) {
      if (!p.conf.url.empty() && !p.link && !p.dialing && now >= p.next_attempt_ms) Dial(p);
    }
  }
}

void Federation::Dial(PeerState& p) {
  auto hp = conf::ParseHostPort(std::string_view(p.conf.url).substr(5));
  if (!hp.ok()) return;
  lws_client_connect_info ci;
  memset(&ci, 0, sizeof ci);
  std::string host = hp->host;
  ci.context = context_;
  ci.vhost = vhost_;
  ci.address = host.c_str();
  ci.port = hp->port;
  ci.path = "/federation";
  ci.host = ci.address;
  ci.origin = ci.address;
  ci.protocol = "chatd-federation";
  ci.local_protocol_name = "chatd-federation";
  lws* wsi = nullptr;
  ci.pwsi = &wsi;
  p.dialing = true;
  Link* l = NewLink(nullptr, true, p.conf.name);
  uint64_t id = l->id;
  ci.opaque_user_data = reinterpret_cast<void*>(static_cast<uintptr_t>(id));
  lws* r = lws_client_connect_via_info(&ci);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;  // failed at once; the error callback cleaned up
  if (!r) {
    by_id_.erase(id);
    delete l;
    p.dialing = false;
    p.failures++;
    p.last_error = "cannot start a connection";
    p.backoff_ms = std::min(kMaxBackoffMs, p.backoff_ms ? p.backoff_ms * 2 : 500);
    p.next_attempt_ms = MonoMs() + p.backoff_ms;
    return;
  }
  l->wsi = r;
  by_wsi_[r] = l;
}

Link* Federation::NewLink(lws* wsi, bool outbound, const std::string& peer) {
  auto* l = new Link();
  l->id = next_link_id_++;
  l->wsi = wsi;
  l->outbound = outbound;
  l->peer = peer;
  l->opened_ms = NowMs();
  auto c = crypto::RandomBytes(32);
  l->my_challenge = crypto::Base64UrlEncode(c);
  by_id_[l->id] = l;
  if (wsi) by_wsi_[wsi] = l;
  return l;
}

void Federation::CloseLink(Link* l, const std::string& why) {
  if (l->closing) return;
  l->closing = true;
  l->close_reason = why;
  if (l->wsi) lws_callback_on_writable(l->wsi);
}

void Federation::SendControl(Link* l, std::string json) {
  l->control.push_back(std::move(json));
  if (l->wsi) lws_callback_on_writable(l->wsi);
}

void Federation::SendVector(Link* l, const char* type) {
  auto v = core_.VectorSnapshot();
  json::JsonWriter w;
  w.BeginObject().Key("type").Str(type).Key("n").Int(static_cast<int64_t>(l->processed));
  w.Key("v").Raw(VectorJson(v));
  // Ask for our own envelopes back (relay/recovery.h). Peers that predate the field ignore it.
  l->sent_recovering = core_.Recovering();
  if (l->sent_recovering) w.Key("recovering").Bool(true);
  w.EndObject();
  l->last_ack_n = l->processed;
  l->last_ack_v = std::move(v);
  SendControl(l, w.Take());
}

int Federation::Callback(lws* wsi, int reason_int, void* in, size_t len) {
  auto reason = static_cast<lws_callback_reasons>(reason_int);
  auto it = by_wsi_.find(wsi);
  Link* l = it == by_wsi_.end() ? nullptr : it->second;
  switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
      char uri[64];
      int n = lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI);
      return (n <= 0 || strcmp(uri, "/federation") != 0) ? 1 : 0;
    }
    case LWS_CALLBACK_ESTABLISHED: {
      l = NewLink(wsi, false, "");
      SendControl(l, "{\"type\":\"hello\",\"relay\":\"" + cfg_.relay_name + "\",\"challenge\":\"" + l->my_challenge + "\"}");
      return 0;
    }
    case LWS_CALLBACK_CLIENT_ESTABLISHED: {
      if (!l) {
        auto id = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(lws_get_opaque_user_data(wsi)));
        auto bit = by_id_.find(id);
        if (bit == by_id_.end()) return -1;
        l = bit->second;
        l->wsi = wsi;
        by_wsi_[wsi] = l;
      }
      SendControl(l, "{\"type\":\"hello\",\"relay\":\"" + cfg_.relay_name + "\",\"challenge\":\"" + l->my_challenge + "\"}");
      return 0;
    }
    case LWS_CALLBACK_RECEIVE:
    case LWS_CALLBACK_CLIENT_RECEIVE: {
      if (!l || l->closing) return 0;
      if (lws_is_first_fragment(wsi)) l->rx.clear();
      if (l->rx.size() + len > kMaxMessage) {
        CloseLink(l, "message too large");
        return 0;
      }
      l->rx.append(static_cast<const char*>(in), len);
      if (!lws_is_final_fragment(wsi)) return 0;
      std::string msg = std::move(l->rx);
      l->rx.clear();
      if (lws_frame_is_binary(wsi)) OnBinary(l, msg);
      else OnText(l, msg);
      return 0;
    }
    case LWS_CALLBACK_SERVER_WRITEABLE:
    case LWS_CALLBACK_CLIENT_WRITEABLE:
      if (!l) return -1;
      return OnWriteable(l);
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_CLOSED: {
      if (!l) {
        auto id = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(lws_get_opaque_user_data(wsi)));
        auto bit = by_id_.find(id);
        if (bit != by_id_.end()) l = bit->second;
      }
      if (!l) return 0;
      std::string err = reason == LWS_CALLBACK_CLIENT_CONNECTION_ERROR
                            ? std::string("connect failed: ") + (in ? static_cast<const char*>(in) : "")
                            : (l->close_reason.empty() ? "connection closed" : l->close_reason);
      if (PeerState* p = PeerOf(l->peer)) {
        if (p->link == l) {
          p->link = nullptr;
          p->connected_since_ms = 0;
          log::Warn("federation: link down", {{"peer", l->peer}, {"reason", err}});
        }
        if (l->outbound) {
          p->dialing = false;
          p->failures++;
          p->last_error = err;
          p->backoff_ms = std::min(kMaxBackoffMs, p->backoff_ms ? p->backoff_ms * 2 : 500);
          int64_t jitter = static_cast<int64_t>(crypto::RandomU64() % static_cast<uint64_t>(p->backoff_ms / 4 + 1));
          p->next_attempt_ms = MonoMs() + p->backoff_ms + jitter;
        }
      }
      by_wsi_.erase(wsi);
      by_id_.erase(l->id);
      delete l;
      return 0;
    }
    default:
      return lws_callback_http_dummy(wsi, reason, nullptr, in, len);
  }
}

void Federation::OnText(Link* l, std::string_view text) {
  json::Doc doc;
  if (!json::Parse(text, &doc).ok()) return CloseLink(l, "malformed control frame");
  std::string_view type = json::TypeOf(doc);
  if (type == "hello") {
    auto relay = json::GetString(doc, "relay", 32);
    auto challenge = json::GetString(doc, "challenge", 64);
    if (!relay.ok() || !challenge.ok()) return CloseLink(l, "bad hello");
    std::string name(*relay);
    PeerState* p = PeerOf(name);
    if (!p || (l->outbound && name != l->peer)) {
      log::Warn("federation: refused a link from an unknown relay", {{"relay", name}});
      return CloseLink(l, "unknown relay");
    }
    l->peer = name;
    l->their_challenge = std::string(*challenge);
    std::string text_to_sign = SignedText(l->their_challenge, cfg_.relay_name, name);
    auto sig = core_.Sign(text_to_sign);
    SendControl(l, "{\"type\":\"auth\",\"sig\":\"" + crypto::Base64UrlEncode(sig) + "\"}");
    l->sent_auth = true;
    return;
  }
  if (type == "auth") {
    auto sig = json::GetString(doc, "sig", 128);
    PeerState* p = PeerOf(l->peer);
    if (!sig.ok() || !p || !l->sent_auth) return CloseLink(l, "bad auth");
    auto key = crypto::ParsePublicKey(p->conf.key);
    auto raw = crypto::Base64UrlDecode(*sig);
    std::string signed_text = SignedText(l->my_challenge, l->peer, cfg_.relay_name);
    if (!key.ok() || !raw.ok() || !crypto::VerifySignature(*key, crypto::AsBytes(signed_text), *raw)) {
      log::Error("federation: a peer failed the handshake (wrong key)", {{"peer", l->peer}});
      return CloseLink(l, "handshake signature invalid");
    }
    // One link per peer: keep the one dialed by the relay whose name sorts first.
    if (p->link && p->link != l) {
      bool keep_new = (cfg_.relay_name < l->peer) == l->outbound;
      if (!keep_new) return CloseLink(l, "duplicate link");
      CloseLink(p->link, "duplicate link");
    }
    l->verified = true;
    p->link = l;
    SendVector(l, "vector");
    return;
  }
  if (!l->verified) return CloseLink(l, "handshake first");
  if (type == "vector" || type == "ack") {
    auto it = doc.FindMember("v");
    if (it == doc.MemberEnd() || !it->value.IsObject()) return CloseLink(l, "bad vector");
    PeerState* p = PeerOf(l->peer);
    int64_t now = MonoMs();
    uint64_t ours = 0;  // what the peer holds of our own origin
    for (auto m = it->value.MemberBegin(); m != it->value.MemberEnd(); ++m) {
      if (!m->value.IsUint64()) continue;
      std::string o(m->name.GetString(), m->name.GetStringLength());
      if (o == cfg_.relay_name) ours = m->value.GetUint64();
      l->their[o] = std::max(l->their[o], m->value.GetUint64());
      if (p) p->acked[o] = l->their[o];
    }
    auto n = doc.FindMember("n");
    if (n != doc.MemberEnd() && n->value.IsUint64()) l->acked_n = std::max(l->acked_n, n->value.GetUint64());
    // Ours: a peer holding more of our own log than we do means we were rolled back; we
    // take it back before originating, and tell every peer at once.
    if (core_.NotePeerOwnSeq(l->peer, ours)) {
      for (auto& [id, other] : by_id_) {
        if (other->verified && !other->closing && other != l) SendVector(other, "ack");
      }
    }
    auto rec = doc.FindMember("recovering");
    SetPeerRecovering(l, rec != doc.MemberEnd() && rec->value.IsTrue());
    if (type == "vector" && !l->ready) {
      LinkReady(l);
      if (core_.Recovering() != l->sent_recovering) SendVector(l, "ack");
      return;
    }
    if (core_.Recovering() != l->sent_recovering) SendVector(l, "ack");
    // Rewind an origin whose gap stays although the peer received all we sent.
    for (auto& [o, nx] : l->next) {
      uint64_t have = l->their[o];
      if (have + 1 >= nx || l->sent > l->acked_n) {
        l->stalled_since[o] = 0;
        continue;
      }
      if (!l->stalled_since[o]) l->stalled_since[o] = now;
      else if (now - l->stalled_since[o] > kRewindAfterMs) {
        log::Warn("federation: peer lacks envelopes we sent; re-sending", {{"peer", l->peer}, {"origin", o}, {"from", have + 1}});
        nx = have + 1;
        l->stalled_since[o] = 0;
      }
    }
    for (auto& [o, nx] : l->next) Pump(l, o);
    return;
  }
  if (type == "ephemeral") {
    auto id = json::GetString(doc, "id", 64);
    if (!id.ok()) return;
    std::string key(*id);
    if (seen_ephemeral_.count(key)) return;
    if (seen_ephemeral_.size() > 10000) seen_ephemeral_.clear();
    seen_ephemeral_[key] = MonoMs();
    auto chat = json::GetOptId(doc, "chat_id");
    auto user = json::GetOptId(doc, "user_id");
    auto ev = doc.FindMember("event");
    if (!chat.ok() || !user.ok() || ev == doc.MemberEnd() || !ev->value.IsObject()) return;
    rapidjson::StringBuffer b;
    rapidjson::Writer<rapidjson::StringBuffer> wr(b);
    ev->value.Accept(wr);
    std::string event(b.GetString(), b.GetSize());
    uint64_t chat_id = chat.value().value_or(0), user_id = user.value().value_or(0);
    core_.Post([this, chat_id, user_id, event] { core_.OpRemoteEphemeral(chat_id, user_id, event); });
    RelayEphemeral(l, std::string(text));
    return;
  }
  CloseLink(l, "unknown control frame");
}

void Federation::RelayEphemeral(Link* from, const std::string& json_text) {
  for (auto& [id, l] : by_id_) {
    if (l != from && l->verified && !l->closing) SendControl(l, json_text);
  }
}

void Federation::SendEphemeral(uint64_t chat_id, uint64_t user_id, const std::string& event_json) {
  std::string id = crypto::Base64UrlEncode(crypto::RandomBytes(12));
  seen_ephemeral_[id] = MonoMs();
  json::JsonWriter w;
  w.BeginObject().Key("type").Str("ephemeral").Key("id").Str(id);
  if (chat_id) w.Key("chat_id").Id(chat_id);
  if (user_id) w.Key("user_id").Id(user_id);
  w.Key("event").Raw(event_json).EndObject();
  RelayEphemeral(nullptr, w.Take());
}

void Federation::SetPeerRecovering(Link* l, bool recovering) {
  if (recovering == l->peer_recovering) return;
  l->peer_recovering = recovering;
  const std::string& o = l->peer;
  if (!recovering) {
    // Done: its own origin is its own again; nothing more of it goes back on this link.
    l->next.erase(o);
    l->stalled_since.erase(o);
    l->max_offered.erase(o);
    log::Info("federation: peer recovered its own log", {{"peer", o}, {"seq", l->their[o]}});
    return;
  }
  uint64_t have = 0;
  for (const auto& [origin, seq] : core_.VectorSnapshot()) {
    if (origin == o) have = seq;
  }
  log::Info("federation: peer is recovering its own log; sending back what we hold of it",
            {{"peer", o}, {"from_seq", l->their[o] + 1}, {"to_seq", have}});
  if (l->ready) {
    if (!l->next.count(o)) l->next[o] = l->their[o] + 1;
    Pump(l, o);
  }
}

void Federation::LinkReady(Link* l) {
  l->ready = true;
  PeerState* p = PeerOf(l->peer);
  if (p) {
    p->failures = 0;
    p->backoff_ms = 0;
    p->last_error.clear();
    p->connected_since_ms = NowMs();
    p->dialing = false;
  }
  log::Info("federation: link up", {{"peer", l->peer}, {"outbound", l->outbound}});
  core_.Post([this] { core_.AnnouncePresence(); });  // so a peer that just (re)started knows who is online here
  for (const auto& [o, seq] : core_.VectorSnapshot()) {
    if (o == l->peer && !l->peer_recovering) continue;  // its own origin: it has it
    l->next[o] = l->their[o] + 1;
    if (seq > l->their[o]) StreamFrom(l, o);
  }
}

void Federation::OnBinary(Link* l, std::string_view data) {
  if (!l->verified) return CloseLink(l, "handshake first");
  auto envs = std::make_shared<std::vector<crypto::Envelope>>();
  size_t off = 0;
  uint64_t items = 0;  // undecodable ones included: they are processed (refused) too
  while (off < data.size()) {
    if (data.size() - off < 4) return CloseLink(l, "truncated envelope batch");
    uint32_t n = (static_cast<uint32_t>(static_cast<uint8_t>(data[off])) << 24) |
                 (static_cast<uint32_t>(static_cast<uint8_t>(data[off + 1])) << 16) |
                 (static_cast<uint32_t>(static_cast<uint8_t>(data[off + 2])) << 8) |
                 static_cast<uint32_t>(static_cast<uint8_t>(data[off + 3]));
    off += 4;
    if (n > data.size() - off) return CloseLink(l, "truncated envelope batch");
    auto env = crypto::DecodeEnvelope(data.substr(off, n));
    off += n;
    ++items;
    if (!env.ok()) {
      log::Error("federation: undecodable envelope refused", {{"peer", l->peer}, {"error", env.status().message()}});
      continue;
    }
    envs->push_back(std::move(env.value()));
  }
  l->received += items;
  std::string peer = l->peer;
  uint64_t link_id = l->id;
  workers_.Submit([this, envs, peer, link_id, items](store::Queries&) {
    // Counted as processed (and acknowledged) once the core has taken them.
    auto done = [this, link_id, items] { post_([this, link_id, items] { OnProcessed(link_id, items); }); };
    auto good = std::make_shared<std::vector<crypto::Envelope>>();
    for (auto& e : *envs) {
      auto key = keys_.KeyOf(e.origin);
      if (!key) {
        log::Error("federation: envelope from an unknown origin refused", {{"peer", peer}, {"origin", e.origin}});
        refused_++;
        continue;
      }
      Status st = crypto::Verify(e, *key);
      if (!st.ok()) {
        log::Error("federation: forged or altered envelope refused",
                   {{"peer", peer}, {"origin", e.origin}, {"seq", e.seq}, {"error", st.message()}});
        refused_++;
        continue;
      }
      good->push_back(std::move(e));
    }
    if (good->empty()) return done();
    core_.Post([this, good, done, peer] {
      for (auto& e : *good) core_.OpApplyRemote(std::move(e), peer);
      done();
    });
  });
}

void Federation::OnProcessed(uint64_t link_id, uint64_t n) {
  auto it = by_id_.find(link_id);
  if (it == by_id_.end()) return;  // the link closed meanwhile; its successor starts afresh
  Link* l = it->second;
  l->processed += n;
  if (!l->closing && l->processed - l->last_ack_n >= kAckEvery) SendVector(l, "ack");
}

void Federation::Append(Link* l, const crypto::Envelope& env) {
  std::string enc = crypto::EncodeEnvelope(env);
  if (l->out.empty() || l->out.back().size() + enc.size() + 4 > kBatchBytes) l->out.emplace_back();
  std::string& b = l->out.back();
  uint32_t n = static_cast<uint32_t>(enc.size());
  char len[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8), static_cast<char>(n)};
  b.append(len, 4);
  b.append(enc);
  l->sent++;
  if (l->wsi) lws_callback_on_writable(l->wsi);
}

void Federation::Offer(const std::shared_ptr<const crypto::Envelope>& env) {
  for (auto& [id, l] : by_id_) {
    // Never the origin's own envelopes back to it: a recovering origin gets them from its
    // stream (Pump), which reads what is durable here.
    if (!l->ready || l->closing || l->peer == env->origin) continue;
    const std::string& o = env->origin;
    auto nit = l->next.find(o);
    uint64_t nx = nit == l->next.end() ? l->their[o] + 1 : nit->second;
    if (nit == l->next.end()) l->next[o] = nx;
    if (env->seq < nx) continue;
    l->max_offered[o] = std::max(l->max_offered[o], env->seq);
    if (env->seq == nx && !l->streaming[o] && l->sent - l->acked_n < kWindow) {
      Append(l, *env);
      l->next[o] = nx + 1;
    } else if (!l->streaming[o]) {
      StreamFrom(l, o);
    }
  }
}

void Federation::Pump(Link* l, const std::string& origin) {
  if (!l->ready || l->closing || l->streaming[origin]) return;
  if (origin == l->peer && !l->peer_recovering) return;
  uint64_t nx = l->next[origin];
  if (l->max_offered[origin] >= nx || l->their[origin] + 1 < nx || nx == 0) StreamFrom(l, origin);
  else {
    for (const auto& [o, seq] : core_.VectorSnapshot()) {
      if (o == origin && seq >= nx) StreamFrom(l, origin);
    }
  }
}

void Federation::StreamFrom(Link* l, const std::string& origin) {
  if (l->streaming[origin] || l->sent - l->acked_n >= kWindow) return;
  if (origin == l->peer && !l->peer_recovering) return;
  l->streaming[origin] = true;
  uint64_t from = l->next[origin];
  uint64_t link_id = l->id;
  workers_.Submit([this, link_id, origin, from](store::Queries& q) {
    // Only what is durable here: the log may already hold the core's newest commits while
    // their fdatasync runs, and a peer must never get an envelope a power loss could take
    // back (this relay would then reuse its seq). The vector snapshot is durable.
    uint64_t durable = 0;
    for (const auto& [o, seq] : core_.VectorSnapshot()) {
      if (o == origin) durable = seq;
    }
    auto rows = q.EnvelopesFrom(origin, from ? from - 1 : 0, kStreamPage);
    auto envs = std::make_shared<std::vector<crypto::Envelope>>();
    if (rows.ok()) {
      for (auto& r : *rows) {
        if (r.env.seq > durable) break;
        envs->push_back(std::move(r.env));
      }
    }
    post_([this, link_id, origin, envs] {
      auto it = by_id_.find(link_id);
      if (it == by_id_.end()) return;
      Link* l2 = it->second;
      l2->streaming[origin] = false;
      if (origin == l2->peer && !l2->peer_recovering) return;  // it recovered meanwhile
      uint64_t& nx = l2->next[origin];
      for (const auto& e : *envs) {
        if (e.seq != nx) continue;
        Append(l2, e);
        ++nx;
      }
      bool full = envs->size() == static_cast<size_t>(kStreamPage);
      if ((full || l2->max_offered[origin] >= nx) && l2->sent - l2->acked_n < kWindow) StreamFrom(l2, origin);
    });
  });
}

int Federation::OnWriteable(Link* l) {
  if (l->closing) {
    const std::string& r = l->close_reason;
    lws_close_reason(l->wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION,
                     reinterpret_cast<unsigned char*>(const_cast<char*>(r.data())), std::min<size_t>(r.size(), 120));
    return -1;
  }
  std::string msg;
  lws_write_protocol kind = LWS_WRITE_TEXT;
  if (!l->control.empty()) {
    msg = std::move(l->control.front());
    l->control.pop_front();
  } else if (!l->out.empty()) {
    msg = std::move(l->out.front());
    l->out.pop_front();
    kind = LWS_WRITE_BINARY;
  } else {
    return 0;
  }
  std::vector<unsigned char> buf(LWS_PRE + msg.size());
  memcpy(buf.data() + LWS_PRE, msg.data(), msg.size());
  if (lws_write(l->wsi, buf.data() + LWS_PRE, msg.size(), kind) < static_cast<int>(msg.size())) return -1;
  if (!l->control.empty() || !l->out.empty()) lws_callback_on_writable(l->wsi);
  return 0;
}

void Federation::Tick() {
  int64_t now = MonoMs();
  for (auto& [name, p] : peers_) {
    if (!p.conf.url.empty() && !p.link && !p.dialing && now >= p.next_attempt_ms && name > std::string()) Dial(p);
  }
  auto mine = core_.VectorSnapshot();
  for (auto& [id, l] : by_id_) {
    if (!l->verified || l->closing) continue;
    // Also when only our vector moved (the last batch committed after its ack), so the
    // sender sees it caught up instead of rewinding to a gap that is no longer there.
    if (l->processed != l->last_ack_n || (l->ready && l->last_ack_v != mine) ||
        l->sent_recovering != core_.Recovering()) {
      SendVector(l, "ack");
    }
    PeerState* p = PeerOf(l->peer);
    if (!p || !l->ready) continue;
    bool behind = false;
    for (const auto& [o, seq] : mine) {
      if (o != l->peer && l->their[o] < seq) behind = true;
    }
    if (!behind) p->caught_up_ms = NowMs();
    for (auto& [o, nx] : l->next) Pump(l, o);
  }
}

std::string Federation::StatusJson() {
  auto mine = core_.VectorSnapshot();
  json::JsonWriter w;
  w.BeginObject();
  w.Key("relay").Str(cfg_.relay_name);
  w.Key("vector").Raw(VectorJson(mine));
  w.Key("refused_envelopes").Int(static_cast<int64_t>(refused_.load()));
  w.Key("quarantined").BeginArray();
  for (const auto& q : core_.Quarantined()) w.Str(q);
  w.EndArray();
  w.Key("peers").BeginArray();
  int64_t now = NowMs();
  for (auto& [name, p] : peers_) {
    bool up = p.link && p.link->ready;
    uint64_t lag = 0;
    for (const auto& [o, seq] : mine) {
      if (o == name) continue;
      uint64_t theirs = p.acked.count(o) ? p.acked.at(o) : 0;
      if (seq > theirs) lag += seq - theirs;
    }
    w.BeginObject();
    w.Key("name").Str(name);
    w.Key("url").StrOrNull(p.conf.url);
    w.Key("connected").Bool(up);
    if (up) w.Key("since").Time(p.connected_since_ms);
    else w.Key("since").Null();
    w.Key("down").Bool(p.failures >= kBreakerFailures);
    w.Key("failures").Int(p.failures);
    w.Key("last_error").StrOrNull(p.last_error);
    w.Key("vector").BeginObject();
    for (const auto& [o, s] : p.acked) w.Key(o).Int(static_cast<int64_t>(s));
    w.EndObject();
    w.Key("lag_envelopes").Int(static_cast<int64_t>(lag));
    w.Key("lag_seconds").Int(lag == 0 || !p.caught_up_ms ? 0 : (now - p.caught_up_ms) / 1000);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.Take();
}

}  // namespace chatd
