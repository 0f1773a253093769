#include "relay/recovery.h"

namespace chatd {

void OwnLog::Start(std::vector<Peer> peers, bool restored, int64_t wait_ms, uint64_t own, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  peers_ = std::move(peers);
  heard_.clear();
  target_peer_.clear();
  target_.store(0, std::memory_order_release);
  own_.store(own, std::memory_order_release);
  started_ms_ = now_ms;
  wait_ms_ = wait_ms < 0 ? 0 : wait_ms;
  wait_until_ms_ = now_ms + wait_ms_;
  waiting_.store(restored, std::memory_order_release);
}

void OwnLog::SetPeers(std::vector<Peer> peers) {
  std::lock_guard<std::mutex> lock(mu_);
  peers_ = std::move(peers);
}

bool OwnLog::RaiseLocked(const std::string& peer, uint64_t seq) {
  if (seq <= own_.load(std::memory_order_acquire) || seq <= target_.load(std::memory_order_acquire)) return false;
  target_peer_ = peer;
  target_.store(seq, std::memory_order_release);
  return true;
}

bool OwnLog::NotePeer(const std::string& peer, uint64_t seq, bool* first_heard) {
  if (first_heard) *first_heard = false;
  // The common case, every ack of a relay that was never rolled back: nothing to note.
  if (!waiting_.load(std::memory_order_acquire) && seq <= own_.load(std::memory_order_acquire)) return false;
  std::lock_guard<std::mutex> lock(mu_);
  if (waiting_.load(std::memory_order_acquire)) {
    bool fresh = heard_.insert(peer).second;
    if (first_heard) *first_heard = fresh;
  }
  return RaiseLocked(peer, seq);
}

bool OwnLog::NoteOwnEnvelope(const std::string& peer, uint64_t seq) {
  if (seq <= own_.load(std::memory_order_acquire) || seq <= target_.load(std::memory_order_acquire)) return false;
  std::lock_guard<std::mutex> lock(mu_);
  return RaiseLocked(peer, seq);
}

std::string OwnLog::WaitEnds(int64_t now_ms) {
  if (!waiting_.load(std::memory_order_acquire)) return "";
  std::lock_guard<std::mutex> lock(mu_);
  if (!waiting_.load(std::memory_order_acquire)) return "";
  std::string why;
  if (peers_.empty()) {
    why = "no peers are pinned";
  } else if (now_ms >= wait_until_ms_) {
    why = wait_ms_ == 0 ? "federation.restore_wait is 0" : "federation.restore_wait passed";
  } else {
    bool all = true;
    for (const Peer& p : peers_) {
      if (heard_.count(p.name)) continue;
      // A peer we do not dial may reach us only through the others: once one peer has been
      // heard, it is waited for only as long as its reconnect backoff could last.
      if (!p.dialed && !heard_.empty() && now_ms >= started_ms_ + kKeyOnlyGraceMs) continue;
      all = false;
    }
    if (all && own_.load(std::memory_order_acquire) >= target_.load(std::memory_order_acquire)) {
      why = "caught up with every peer";
    }
  }
  if (!why.empty()) waiting_.store(false, std::memory_order_release);
  return why;
}

bool OwnLog::Release() {
  std::lock_guard<std::mutex> lock(mu_);
  return waiting_.exchange(false, std::memory_order_acq_rel);
}

OwnLog::Snapshot OwnLog::Get() const {
  std::lock_guard<std::mutex> lock(mu_);
  Snapshot s;
  s.own = own_.load(std::memory_order_acquire);
  const uint64_t target = target_.load(std::memory_order_acquire);
  s.waiting = waiting_.load(std::memory_order_acquire);
  s.holding = s.waiting || target > s.own;
  if (target > s.own) {
    s.target = target;
    s.target_peer = target_peer_;
  }
  if (s.waiting) {
    for (const Peer& p : peers_) {
      if (!heard_.count(p.name)) s.waiting_for.push_back(p.name);
    }
    s.wait_until_ms = wait_until_ms_;
  }
  if (!s.holding) return s;
  const std::string prefix = s.waiting ? "restored from a backup: " : "the store was rolled back: ";
  if (s.target) {
    s.reason = prefix + "recovering this relay's own envelopes " + std::to_string(s.own + 1) + ".." +
               std::to_string(s.target) + " from peer " + s.target_peer;
  } else if (!s.waiting_for.empty()) {
    std::string names;
    for (const auto& n : s.waiting_for) names += (names.empty() ? "" : ", ") + n;
    s.reason = prefix + "waiting for the version vectors of peers " + names;
  } else {
    s.reason = prefix + "waiting for the peers";
  }
  return s;
}

}  // namespace chatd
