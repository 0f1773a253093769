// relay/signer.h — signs the core's envelopes in batches, on two CPUs when there are two.
//
// Ed25519 signing is the largest single cost of a message on the core thread (~half its
// instructions). The core seals its envelopes' bodies as it emits them (SealBody) and
// signs them all just before the batch commits: SignAll splits a batch between the
// calling thread and one helper thread ("chatd-signer"), so a batch signs in about half
// the time when the process may run on more than one CPU. With a one-CPU affinity mask
// (chatd pinned) or a small batch, everything is signed on the calling thread.
#pragma once

#include <condition_variable>
#include <mutex>
#include <span>
#include <thread>

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

  // Signs every envelope (SignHeader); returns when all are signed. One caller at a time.
  void SignAll(std::span<crypto::Envelope> envs);
  // True if the process may run on more than one CPU (sched_getaffinity).
  static bool SeveralCpus();

 private:
  void Run();

  const crypto::KeyPair& key_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::span<crypto::Envelope> job_;  // guarded by mu_: the helper's share
  bool has_job_ = false;             // guarded by mu_
  bool stop_ = false;                // guarded by mu_
};

}  // namespace chatd
