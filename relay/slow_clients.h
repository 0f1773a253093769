// relay/slow_clients.h — the REST API's defence against clients that hold its threads by
// sending or reading slowly ("slowloris").
//
// cpp-httplib serves each connection on one pool thread for as long as the connection is
// open, and its read and write timeouts are per call: a client that sends (or reads) a
// byte every few seconds holds a thread for ever, and api.threads such clients stall the
// whole REST API. While every pool thread is busy, SlowClientGuard looks at the API's
// connections once a second (/proc/self/fd, getsockname, TCP_INFO, SIOCINQ) and shuts down
// (shutdown(2), so that httplib's blocked call returns and the thread is freed) each one
// that moved fewer than kMinBytes either way in the last kWindowMs while nothing it sent
// was waiting for us. A connection waiting for a thread has its request unread, so it is
// never cut; an idle kept-alive one is closed by httplib after 2 s anyway.
//
// Threads: the guard runs on its own thread ("chatd-api-guard"); `busy` is written by the
// pool's threads; Stop() and the counters are safe from any thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace chatd {

class SlowClientGuard {
 public:
  static constexpr int64_t kWindowMs = 10000;
  static constexpr uint64_t kMinBytes = 1024;

  // `port`: the API's local port; `threads`: the pool's size; `busy`: its busy threads.
  SlowClientGuard(int port, int threads, const std::atomic<int>* busy);
  ~SlowClientGuard() { Stop(); }
  SlowClientGuard(const SlowClientGuard&) = delete;
  SlowClientGuard& operator=(const SlowClientGuard&) = delete;
  void Stop();
  // Connections shut down for being too slow, since start.
  uint64_t closed() const { return closed_.load(std::memory_order_relaxed); }

 private:
  struct Conn {
    ino_t ino = 0;  // the socket's inode: a reused fd number is another connection
    int64_t window_start_ms = 0;
    uint64_t window_bytes = 0;  // received + acknowledged bytes at window_start_ms
  };
  void Run();
  void Scan(int64_t now_ms);

  const int port_;
  const int threads_;
  const std::atomic<int>* busy_;
  std::unordered_map<int, Conn> conns_;  // by fd; the guard's thread only
  std::atomic<uint64_t> closed_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace chatd
