#include "relay/signer.h"

#include <pthread.h>
#include <sched.h>

namespace chatd {

namespace {
// Waking the helper costs both threads a futex call and a context switch, and on a busy
// two-CPU machine it takes CPU from the gateway: wake it only for a run of envelopes
// (a big batch); small batches are signed by the core at Collect. Measured on ingest with
// 100 senders (batches of ~40): waking per envelope was slower than never waking; every
// 16 was as fast as never.
constexpr size_t kWakeAt = 16;    // unsigned envelopes queued before Submit wakes the helper
constexpr size_t kShareFrom = 8;  // at Collect, the helper shares the rest from this many
}  // namespace

BatchSigner::BatchSigner(const crypto::KeyPair& key, bool parallel) : key_(key) {
  if (parallel) thread_ = std::thread([this] { Run(); });
}

BatchSigner::~BatchSigner() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool BatchSigner::SeveralCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return false;
  return CPU_COUNT(&set) > 1;
}

crypto::Envelope* BatchSigner::ClaimLocked() {
  if (next_ >= queue_.size()) return nullptr;
  return &queue_[next_++];
}

void BatchSigner::Submit(crypto::Envelope env) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(env));
    wake = idle_ && queue_.size() - next_ >= kWakeAt;  // the helper clears idle_ when it runs
  }
  if (wake) cv_.notify_all();
}

std::vector<crypto::Envelope> BatchSigner::Collect() {
  std::unique_lock<std::mutex> lock(mu_);
  if (idle_ && queue_.size() - next_ >= kShareFrom) cv_.notify_all();
  while (crypto::Envelope* e = ClaimLocked()) {
    lock.unlock();
    crypto::SignHeader(*e, key_);
    lock.lock();
  }
  cv_.wait(lock, [&] { return !helper_signing_; });
  std::vector<crypto::Envelope> out(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
  queue_.clear();
  next_ = 0;
  return out;
}

void BatchSigner::Run() {
  pthread_setname_np(pthread_self(), "chatd-signer");
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    crypto::Envelope* e = ClaimLocked();
    if (!e) {
      if (stop_) return;
      idle_ = true;
      cv_.wait(lock, [&] { return stop_ || next_ < queue_.size(); });
      idle_ = false;
      continue;
    }
    helper_signing_ = true;
    lock.unlock();
    crypto::SignHeader(*e, key_);
    lock.lock();
    helper_signing_ = false;
    cv_.notify_all();
  }
}

}  // namespace chatd
