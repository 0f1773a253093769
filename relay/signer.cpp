#include "relay/signer.h"

#include <pthread.h>
#include <sched.h>

namespace chatd {
namespace {
constexpr size_t kMinParallel = 8;  // below this, handing over costs more than it saves
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

void BatchSigner::SignAll(std::span<crypto::Envelope> envs) {
  if (!thread_.joinable() || envs.size() < kMinParallel) {
    for (auto& e : envs) crypto::SignHeader(e, key_);
    return;
  }
  size_t half = envs.size() / 2;
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = envs.subspan(half);
    has_job_ = true;
  }
  cv_.notify_all();
  for (auto& e : envs.first(half)) crypto::SignHeader(e, key_);
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !has_job_; });
}

void BatchSigner::Run() {
  pthread_setname_np(pthread_self(), "chatd-signer");
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || has_job_; });
    if (stop_) return;
    auto job = job_;
    lock.unlock();
    for (auto& e : job) crypto::SignHeader(e, key_);
    lock.lock();
    has_job_ = false;
    cv_.notify_all();
  }
}

}  // namespace chatd
