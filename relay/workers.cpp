#include "relay/workers.h"

#include "base/log.h"

namespace chatd {

Workers::Workers(store::ReaderPool& readers, int threads) : readers_(readers) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
}

void Workers::Submit(Job job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void Workers::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ && threads_.empty()) return;
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void Workers::Run() {
  pthread_setname_np(pthread_self(), "chatd-worker");
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    auto lease = readers_.Acquire();
    if (!lease.ok()) {
      log::Error("worker: no read connection", {{"error", lease.status().message()}});
      continue;
    }
    job((*lease)->q());
  }
}

}  // namespace chatd
