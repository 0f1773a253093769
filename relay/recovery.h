// relay/recovery.h — may this relay originate envelopes? The recovery of its own log from
// its peers after a restore or a rollback (DESIGN.md §4; chatd(8) RECOVERY).
//
// A relay is the origin of a gap-free sequence (origin, seq). If its store was rolled back
// (`chatctl backup restore`, a copied data directory), its own log may end before what its
// peers already hold from it. Signing new envelopes with those seqs would be equivocation
// (every peer would quarantine the relay), and the acknowledged envelopes of the lost tail
// would be gone from their origin. So the relay takes its own envelopes back from its
// peers (relay/ops_remote.cpp, relay/federation.cpp) and does not originate while
//  * a peer has reported, in a vector or an ack, a seq of our own origin beyond our own
//    log (`target` > `own`); or
//  * it started on a store that `chatctl backup restore` marked as restored, with peers
//    pinned, and has not yet heard every peer's vector and caught up with them (the
//    "restored wait"). The wait ends then, when `federation.restore_wait` has passed since
//    the start, or when the operator releases it. Peers pinned by key only (not dialed by
//    us) are waited for during the first kKeyOnlyGraceMs only, and only once some peer has
//    been heard: such a peer may reach us only through the others.
//
// OwnLog holds that state and decides; the core acts on it (Core::Emit refuses, it logs,
// and clears the store's mark when the wait ends). Thread-safe: Holding(), SetOwn() and
// NotePeer()'s common path (nothing new: called for every ack) are lock-free atomics; the
// rest takes a mutex.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace chatd {

class OwnLog {
 public:
  // Longer than a peer's longest reconnect backoff (30 s plus up to 25% jitter).
  static constexpr int64_t kKeyOnlyGraceMs = 45000;

  struct Peer {
    std::string name;
    bool dialed = false;  // pinned with a url: this relay dials it
  };

  struct Snapshot {
    bool holding = false;  // refusing to originate
    bool waiting = false;  // the restored wait
    uint64_t own = 0;      // the last seq of our own log
    uint64_t target = 0;   // the highest seq of our own origin a peer reported (0: none above own)
    std::string target_peer;
    std::vector<std::string> waiting_for;  // peers not heard yet (restored wait)
    int64_t wait_until_ms = 0;             // when the restored wait ends at the latest (wall clock)
    std::string reason;                    // why we are holding; "" when not
  };

  // At the core's start: the pinned peers, whether the store is marked restored, the
  // restored wait's bound (federation.restore_wait), our own log's last seq.
  void Start(std::vector<Peer> peers, bool restored, int64_t wait_ms, uint64_t own, int64_t now_ms);
  // The pinned peers changed (reload).
  void SetPeers(std::vector<Peer> peers);
  // Our own log's last seq (the core, whenever it changes).
  void SetOwn(uint64_t seq) { own_.store(seq, std::memory_order_release); }
  uint64_t own() const { return own_.load(std::memory_order_acquire); }

  // `peer` reported (a vector or an ack) holding our own origin up to `seq` (0: none).
  // True when that is beyond our own log and beyond what any peer reported before: the
  // caller logs which seqs are being recovered from whom. *first_heard (if given) is set
  // when this is the peer's first report during the restored wait.
  bool NotePeer(const std::string& peer, uint64_t seq, bool* first_heard = nullptr);
  // A peer sent us an envelope of our own origin with this seq: it holds at least that.
  bool NoteOwnEnvelope(const std::string& peer, uint64_t seq);

  bool Holding() const {
    return waiting_.load(std::memory_order_acquire) ||
           target_.load(std::memory_order_acquire) > own_.load(std::memory_order_acquire);
  }
  bool Waiting() const { return waiting_.load(std::memory_order_acquire); }

  // Ends the restored wait if it is over, and says why ("" = still waiting, or no wait).
  std::string WaitEnds(int64_t now_ms);
  // The operator ends the restored wait (a peer known to hold more still holds us). False
  // if there was no wait.
  bool Release();

  Snapshot Get() const;

 private:
  bool RaiseLocked(const std::string& peer, uint64_t seq);

  std::atomic<uint64_t> own_{0};
  std::atomic<uint64_t> target_{0};
  std::atomic<bool> waiting_{false};
  mutable std::mutex mu_;
  std::vector<Peer> peers_;      // guarded by mu_
  std::set<std::string> heard_;  // guarded by mu_: peers whose vector arrived since the start
  std::string target_peer_;      // guarded by mu_
  int64_t started_ms_ = 0;       // guarded by mu_
  int64_t wait_ms_ = 0;          // guarded by mu_
  int64_t wait_until_ms_ = 0;    // guarded by mu_
};

}  // namespace chatd
