// relay/signer.h — signs the core's envelopes on a second CPU while the core goes on.
//
// Ed25519 signing (~20 us here) is the largest single cost of a message on the core
// thread. The core seals each envelope's body as it emits it (SealBody) and hands it to
// Submit at once. Once a run of envelopes waits (a big batch), a helper thread
// ("chatd-signer") signs them while the core validates and applies the rest of the batch.
// Just before the commit the core calls Collect: it signs whatever the helper has not
// taken yet itself (with the helper's help if much is left), waits for the one the helper
// is signing, and gets the batch back signed, in order. With a one-CPU affinity mask
// (chatd pinned) there is no helper and Collect signs everything on the calling thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "crypto/envelope.h"
#include "crypto/keys.h"

namespace chatd {

class BatchSigner {
 public:
  // Starts the helper thread unless `parallel` is false.
  BatchSigner(const crypto::KeyPair& key, bool parallel);
  ~BatchSigner();
  BatchSigner(const BatchSigner&) = delete;
  BatchSigner& operator=(const BatchSigner&) = delete;

  // Queues an envelope for signing (SignHeader). One thread (the core) submits and collects.
  void Submit(crypto::Envelope env);
  // Every envelope submitted since the last Collect, signed, in submission order.
  std::vector<crypto::Envelope> Collect();
  // True if the process may run on more than one CPU (sched_getaffinity).
  static bool SeveralCpus();

 private:
  void Run();
  // Claims the next unsigned envelope; nullptr if none. Holds mu_.
  crypto::Envelope* ClaimLocked();

  const crypto::KeyPair& key_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  // guarded by mu_: this batch's envelopes (references stay valid while the deque grows at
  // its end); [0, next_) are signed or being signed (`helper_signing_`: one by the helper).
  std::deque<crypto::Envelope> queue_;
  size_t next_ = 0;
  bool helper_signing_ = false;
  bool idle_ = false;  // the helper waits for work
  bool stop_ = false;
};

}  // namespace chatd
