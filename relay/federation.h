// relay/federation.h — peer links: handshake, replication streams, gossip. Gateway thread.
//
// Every relay of a federation replicates every envelope. A link is a WebSocket on the
// federation listener (inbound) or dialed by us (outbound, for pinned peers with a url),
// protocol "chatd-federation":
//   1. both sides send {"type":"hello","relay":NAME,"challenge":B64(32 random bytes)};
//   2. each answers {"type":"auth","sig":B64(Ed25519("chatd-federation-v1\n" + peer's
//      challenge + "\n" + own name + "\n" + peer name))}, checked against the pinned key;
//   3. each sends {"type":"vector","v":{origin: seq}} and then streams, in seq order per
//      origin, every envelope the other lacks (binary frames: u32be length + encoded
//      envelope, repeated), keeping at most kWindow envelopes unacknowledged;
//   4. the receiver acks with {"type":"ack","n":PROCESSED,"v":VECTOR} (PROCESSED: envelopes
//      the receiver's core has taken or that were refused, so the window also bounds what
//      waits in the receiver); a gap that stays (an envelope the receiver dropped) makes the
//      sender rewind to it.
// A relay whose store was rolled back (restored from a backup) adds "recovering":true to its
// vector and acks while a peer holds more of its own log than it does (relay/recovery.h);
// its own origin, never sent back to it otherwise, is then streamed to it like any other.
// New envelopes (ours and, by gossip, everyone's) are pushed at once. Signatures are
// verified on the worker pool, never on the loops; the core applies (relay/ops_remote.cpp).
// Outbound links reconnect with capped exponential backoff and jitter; after
// kBreakerFailures failures in a row a peer is marked down (still retried at the cap).
//
// All methods run on the gateway thread except where noted.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <uv.h>

#include "conf/config.h"
#include "crypto/envelope.h"
#include "relay/auth.h"
#include "relay/core.h"
#include "relay/workers.h"

struct lws;
struct lws_context;
struct lws_vhost;

namespace chatd {

struct Link;

class Federation {
 public:
  static constexpr size_t kWindow = 4096;
  static constexpr int kBreakerFailures = 5;

  Federation(const conf::Config& cfg, Core& core, TokenService& keys, Workers& workers,
             std::function<void(std::function<void()>)> post_to_gateway);
  ~Federation();
  void Start(lws_context* context, lws_vhost* vhost, uv_loop_t* loop);
  void Stop();  // closes links (gateway thread, before the context is destroyed)

  void SetPeers(const std::vector<conf::Peer>& peers);
  void Offer(const std::shared_ptr<const crypto::Envelope>& env);  // a newly applied envelope
  // Typing/presence: sent to every link, forwarded once by each relay, never stored.
  void SendEphemeral(uint64_t chat_id, uint64_t user_id, const std::string& event_json);
  int Callback(lws* wsi, int reason, void* in, size_t len);
  std::string StatusJson();  // for the admin API and chatctl federation status

 private:
  struct PeerState {
    conf::Peer conf;
    Link* link = nullptr;          // the ready (or connecting) link, if any
    int failures = 0;
    int64_t next_attempt_ms = 0;
    int64_t backoff_ms = 0;
    int64_t connected_since_ms = 0;
    int64_t caught_up_ms = 0;      // last time the peer had everything we have
    std::string last_error;
    std::map<std::string, uint64_t> acked;  // its vector as last acked
    bool dialing = false;
  };

  static void OnTimer(uv_timer_t* t);
  void Tick();
  void Dial(PeerState& p);
  Link* NewLink(lws* wsi, bool outbound, const std::string& peer);
  void CloseLink(Link* l, const std::string& why);
  void OnText(Link* l, std::string_view text);
  void OnBinary(Link* l, std::string_view data);
  void OnProcessed(uint64_t link_id, uint64_t n);  // n envelopes of the link's taken by the core
  void SendControl(Link* l, std::string json);
  void SendVector(Link* l, const char* type);
  int OnWriteable(Link* l);
  void Pump(Link* l, const std::string& origin);
  void StreamFrom(Link* l, const std::string& origin);
  void Append(Link* l, const crypto::Envelope& env);
  void LinkReady(Link* l);
  // The peer's vector or ack says whether it is recovering its own log (relay/recovery.h).
  void SetPeerRecovering(Link* l, bool recovering);
  PeerState* PeerOf(const std::string& name);

  const conf::Config& cfg_;
  Core& core_;
  TokenService& keys_;
  Workers& workers_;
  std::function<void(std::function<void()>)> post_;
  lws_context* context_ = nullptr;
  lws_vhost* vhost_ = nullptr;
  uv_timer_t timer_{};
  bool timer_started_ = false;
  uint64_t next_link_id_ = 1;
  std::map<std::string, PeerState> peers_;
  std::unordered_map<lws*, Link*> by_wsi_;
  std::unordered_map<uint64_t, Link*> by_id_;
  std::atomic<uint64_t> refused_{0};
  std::unordered_map<std::string, int64_t> seen_ephemeral_;  // id -> first seen (ms), bounded
  void RelayEphemeral(Link* from, const std::string& json_text);  // envelopes refused (bad signature, unknown origin)
};

}  // namespace chatd
