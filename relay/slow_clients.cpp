#include "relay/slow_clients.h"

#include <dirent.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <unordered_set>

#include "base/log.h"
#include "base/time.h"

namespace chatd {
namespace {

// The local port of a connected TCP socket (0 if fd is not one).
int ConnectedPort(int fd) {
  sockaddr_storage local{}, peer{};
  socklen_t len = sizeof local;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) return 0;
  int port = 0;
  if (local.ss_family == AF_INET) {
    port = ntohs(reinterpret_cast<const sockaddr_in*>(&local)->sin_port);
  } else if (local.ss_family == AF_INET6) {
    port = ntohs(reinterpret_cast<const sockaddr_in6*>(&local)->sin6_port);
  } else {
    return 0;
  }
  len = sizeof peer;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) return 0;  // the listener
  return port;
}

}  // namespace

SlowClientGuard::SlowClientGuard(int port, int threads, const std::atomic<int>* busy)
    : port_(port), threads_(threads), busy_(busy) {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "chatd-api-guard");
    Run();
  });
}

void SlowClientGuard::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SlowClientGuard::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; })) {
    lock.unlock();
    if (busy_->load(std::memory_order_relaxed) >= threads_) {
      Scan(NowMs());
    } else {
      conns_.clear();  // no thread is scarce: nobody is cut, and windows start afresh
    }
    lock.lock();
  }
}

void SlowClientGuard::Scan(int64_t now_ms) {
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return;
  std::unordered_set<int> seen;
  int cut = 0;
  while (const dirent* e = readdir(dir)) {
    char* end = nullptr;
    const long n = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || n < 0 || n == dirfd(dir)) continue;
    const int fd = static_cast<int>(n);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode) || ConnectedPort(fd) != port_) continue;
    tcp_info ti{};
    socklen_t len = sizeof ti;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) continue;
    int unread = 0;
    if (ioctl(fd, SIOCINQ, &unread) != 0) unread = 0;
    const uint64_t bytes = ti.tcpi_bytes_received + ti.tcpi_bytes_acked;
    seen.insert(fd);
    auto [it, fresh] = conns_.try_emplace(fd, Conn{st.st_ino, now_ms, bytes});
    Conn& c = it->second;
    if (fresh || c.ino != st.st_ino || unread > 0 || bytes - c.window_bytes >= kMinBytes) {
      c = Conn{st.st_ino, now_ms, bytes};  // new, waiting for us, or moving: a new window
      continue;
    }
    if (now_ms - c.window_start_ms < kWindowMs) continue;
    // Still the same connection (the fd number was not closed and reused meanwhile)?
    struct stat again;
    if (fstat(fd, &again) == 0 && again.st_ino == c.ino && shutdown(fd, SHUT_RDWR) == 0) ++cut;
    conns_.erase(it);
    seen.erase(fd);
  }
  closedir(dir);
  for (auto it = conns_.begin(); it != conns_.end();) it = seen.count(it->first) ? std::next(it) : conns_.erase(it);
  if (cut) {
    closed_.fetch_add(static_cast<uint64_t>(cut), std::memory_order_relaxed);
    log::Warn("api: every REST thread is busy; closed connections that moved almost no bytes",
              {{"closed", std::to_string(cut)},
               {"window_s", std::to_string(kWindowMs / 1000)},
               {"min_bytes", std::to_string(kMinBytes)}});
  }
}

}  // namespace chatd
