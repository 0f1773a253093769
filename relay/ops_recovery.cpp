// Recovering this relay's own log from its peers after a restore or a rollback, on the core
// side (the rules: relay/recovery.h; taking the envelopes back: Core::OpApplyRemote in
// relay/ops_remote.cpp; asking for them: relay/federation.cpp). While the relay holds,
// Core::Emit refuses every new envelope of ours with a retryable 503 `unavailable`.
#include "base/log.h"
#include "relay/core.h"

namespace chatd {

namespace {

std::vector<OwnLog::Peer> RecoveryPeers(const std::vector<conf::Peer>& peers) {
  std::vector<OwnLog::Peer> out;
  for (const conf::Peer& p : peers) out.push_back({p.name, !p.url.empty()});
  return out;
}

// Seconds a refused client is told to wait: recovering a tail takes about as long as
// replicating it (thousands of envelopes a second).
constexpr int kRetryAfterS = 5;

}  // namespace

void Core::StartRecovery() {
  auto mark = store_.writer().Meta(store::Store::kRestoredMeta);
  const bool restored = mark.ok() && mark.value() && !mark.value()->empty();
  const int64_t now = clock_->NowMs();
  own_log_.Start(RecoveryPeers(cfg_.peers), restored, int64_t{cfg_.restore_wait_s} * 1000, seq_, now);
  if (!restored) return;
  // Nothing to wait for (no peers pinned, or federation.restore_wait = 0): over before the
  // relay serves anything. The core's thread is not running yet; this write commits alone.
  if (std::string why = own_log_.WaitEnds(now); !why.empty()) {
    if (Status s = store_.writer().SetMeta(store::Store::kRestoredMeta, ""); !s.ok()) {
      log::Error("recovery: cannot clear the store's restored mark", {{"error", s.message()}});
    }
    log::Info("recovery: started on a restored store; nothing to wait for", {{"reason", why}, {"own_seq", seq_}});
    return;
  }
  recovery_active_ = true;
  recovery_since_ms_ = now;
  recovery_from_seq_ = seq_ + 1;
  std::string names;
  for (const conf::Peer& p : cfg_.peers) names += (names.empty() ? "" : ",") + p.name;
  log::Warn(
      "recovery: started on a restored store; taking this relay's own envelopes back from its peers, "
      "originating nothing until every peer's vector is in and caught up",
      {{"own_seq", seq_}, {"peers", names}, {"restore_wait_s", cfg_.restore_wait_s}});
}

bool Core::NotePeerOwnSeq(const std::string& peer, uint64_t seq) {
  const uint64_t own = own_log_.own();
  bool first_heard = false;
  const bool raised = own_log_.NotePeer(peer, seq, &first_heard);
  if (raised) {
    log::Warn(
        "recovery: a peer holds envelopes of this relay's own origin beyond its log; taking them back "
        "before originating",
        {{"peer", peer}, {"from_seq", own + 1}, {"to_seq", seq}});
  }
  if (raised || first_heard) Post([this] { CheckRecovery(); });
  return raised;
}

void Core::SetRecoveryPeers(const std::vector<conf::Peer>& peers) {
  own_log_.SetPeers(RecoveryPeers(peers));
  if (own_log_.Waiting()) Post([this] { CheckRecovery(); });
}

Status Core::RecoveringStatus() const {
  Status s(Code::kUnavailable, "this relay is recovering its own log from its peers (" + own_log_.Get().reason +
                                   "); nothing was done; try again shortly");
  s.retry_after = kRetryAfterS;
  return s;
}

void Core::CheckRecovery() {
  const int64_t now = clock_->NowMs();
  std::string why = own_log_.WaitEnds(now);
  if (!why.empty()) {
    // In this batch: if it fails, the mark stays and the next start waits again.
    if (Status s = store_.writer().SetMeta(store::Store::kRestoredMeta, ""); !s.ok()) {
      log::Error("recovery: cannot clear the store's restored mark", {{"error", s.message()}});
    }
    log::Info("recovery: the restored store's wait for its peers is over", {{"reason", why}, {"own_seq", seq_}});
  }
  const bool holding = own_log_.Holding();
  if (holding && !recovery_active_) {
    recovery_active_ = true;
    recovery_since_ms_ = now;
    recovery_from_seq_ = seq_ + 1;
  } else if (!holding && recovery_active_) {
    recovery_active_ = false;
    std::string from;
    for (const auto& [peer, n] : recovered_from_) from += (from.empty() ? "" : ",") + peer + ":" + std::to_string(n);
    log::Info("recovery: done; this relay's own log is whole again and it originates envelopes again",
              {{"own_seq", seq_},
               {"recovered", recovered_},
               {"from_seq", recovery_from_seq_},
               {"sent_back_by", from},
               {"ms", now - recovery_since_ms_}});
    recovered_ = 0;
    recovered_from_.clear();
  }
}

Result<bool> Core::OpReleaseRecovery() {
  if (!own_log_.Release()) {
    if (own_log_.Holding()) return false;  // holding for a peer's report: not the operator's to lift
    return NotFound("this relay is not recovering");
  }
  if (Status s = store_.writer().SetMeta(store::Store::kRestoredMeta, ""); !s.ok()) {
    batch_failed_ = true;
    return s;
  }
  log::Warn("recovery: the restored store's wait for its peers was ended by the operator",
            {{"own_seq", seq_}, {"still_holding", own_log_.Holding()}});
  CheckRecovery();
  return true;
}

}  // namespace chatd
