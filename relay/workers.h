// relay/workers.h — a small pool of threads for read-only work off both event loops
// (WebSocket `sync` pages today). Each job gets a store read connection for its duration.
// Submit() is thread-safe; Stop() finishes queued jobs and joins the threads.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "store/store.h"

namespace chatd {

class Workers {
 public:
  using Job = std::function<void(store::Queries&)>;
  Workers(store::ReaderPool& readers, int threads);
  ~Workers() { Stop(); }
  void Submit(Job job);
  void Stop();

 private:
  void Run();
  store::ReaderPool& readers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;  // guarded by mu_
  bool stop_ = false;     // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace chatd
