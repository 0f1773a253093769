// `chatctl bench sink` — a trivial relay stand-in for measuring the load generator's own
// ceiling. It speaks just enough of the gateway protocol: the WebSocket upgrade, `auth`
// (any token; "sink:<chat>" subscribes the connection to that chat), `send_message`
// (acknowledged at once with `message_sent`, and a `new_message` shaped like chatd's sent
// to every other subscriber of the chat) and `ping`. No storage, no REST, no checks.
// One thread, epoll, frames built once per message and coalesced per connection.
#include "cli/bench_sink.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "cli/bench_scan.h"
#include "cli/bench_setup.h"
#include "cli/bench_ws.h"
#include "relay/relay.h"

namespace chatd::cli::bench {

namespace {

constexpr size_t kMaxOut = 64u << 20;

struct SinkConn {
  int fd = -1;
  bool upgraded = false, dirty = false, want_out = false, closed = false;
  uint64_t chat = 0;
  std::string rx, out;
  size_t out_off = 0;
};

class Sink {
 public:
  explicit Sink(int listen_fd, int sig_fd) : lfd_(listen_fd), sfd_(sig_fd) {}
  void Run();

 private:
  void Accept();
  void Read(SinkConn* c);
  void Frames(SinkConn* c);
  void Text(SinkConn* c, std::string_view payload);
  void Send(SinkConn* c, std::string_view json);
  void Flush(SinkConn* c);
  void Close(SinkConn* c);
  void Touch(SinkConn* c) {
    if (!c->dirty) {
      c->dirty = true;
      dirty_.push_back(c);
    }
  }

  int lfd_, sfd_, ep_ = -1;
  std::unordered_map<int, std::unique_ptr<SinkConn>> conns_;
  std::unordered_map<uint64_t, std::vector<SinkConn*>> chats_;
  std::vector<SinkConn*> dirty_;
  std::vector<std::unique_ptr<SinkConn>> graveyard_;  // freed after the iteration
  std::vector<char> buf_ = std::vector<char>(512 * 1024);
  std::string frame_;
  uint64_t next_id_ = 1, messages_ = 0, deliveries_ = 0;
};

void Sink::Run() {
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd_;
  epoll_ctl(ep_, EPOLL_CTL_ADD, lfd_, &ev);
  ev.data.fd = sfd_;
  epoll_ctl(ep_, EPOLL_CTL_ADD, sfd_, &ev);
  epoll_event evs[1024];
  for (;;) {
    int n = epoll_wait(ep_, evs, 1024, dirty_.empty() ? 1000 : 0);
    for (int i = 0; i < n; ++i) {
      int fd = evs[i].data.fd;
      if (fd == sfd_) {
        fprintf(stderr, "sink: %llu messages, %llu deliveries; bye\n", static_cast<unsigned long long>(messages_),
                static_cast<unsigned long long>(deliveries_));
        close(ep_);
        return;
      }
      if (fd == lfd_) {
        Accept();
        continue;
      }
      auto it = conns_.find(fd);
      if (it == conns_.end()) continue;
      SinkConn* c = it->second.get();
      if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) Read(c);
      if (!c->closed && (evs[i].events & EPOLLOUT)) Flush(c);
    }
    for (SinkConn* c : dirty_) {
      c->dirty = false;
      Flush(c);
    }
    dirty_.clear();
    graveyard_.clear();
  }
}

void Sink::Accept() {
  for (;;) {
    int fd = accept4(lfd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto c = std::make_unique<SinkConn>();
    c->fd = fd;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
    conns_[fd] = std::move(c);
  }
}

void Sink::Close(SinkConn* c) {
  if (c->closed) return;
  c->closed = true;
  if (c->chat) {
    auto& v = chats_[c->chat];
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i] == c) {
        v[i] = v.back();
        v.pop_back();
        break;
      }
    }
  }
  close(c->fd);
  auto it = conns_.find(c->fd);
  graveyard_.push_back(std::move(it->second));
  conns_.erase(it);
}

void Sink::Read(SinkConn* c) {
  for (int i = 0; i < 4 && !c->closed; ++i) {
    ssize_t n = read(c->fd, buf_.data(), buf_.size());
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      Close(c);
      return;
    }
    if (n < 0) return;
    c->rx.append(buf_.data(), static_cast<size_t>(n));
    if (!c->upgraded) {
      size_t head_len = 0;
      std::string path, key;
      HttpHead h = ParseRequestHead(c->rx, &head_len, &path, &key);
      if (h == HttpHead::kNeedMore) continue;
      if (h == HttpHead::kError || path != "/ws" || key.empty()) {
        Close(c);
        return;
      }
      c->rx.erase(0, head_len);
      c->out +=
          "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Accept: " +
          WsAccept(key) + "\r\n\r\n";
      c->upgraded = true;
      Touch(c);
    }
    Frames(c);
    if (static_cast<size_t>(n) < buf_.size()) return;
  }
}

void Sink::Frames(SinkConn* c) {
  size_t pos = 0;
  while (!c->closed && pos < c->rx.size()) {
    WsFrame f;
    size_t used = 0;
    WsDecode d = DecodeFrame(c->rx.data() + pos, c->rx.size() - pos, /*expect_masked=*/true, 1u << 20, &f, &used);
    if (d == WsDecode::kNeedMore) break;
    if (d == WsDecode::kError || f.opcode == kWsClose) {
      Close(c);
      return;
    }
    pos += used;
    if (f.opcode == kWsText && f.fin) Text(c, f.payload);
  }
  if (!c->closed) c->rx.erase(0, pos);
}

void Sink::Send(SinkConn* c, std::string_view json) {
  AppendServerHeader(&c->out, kWsText, json.size());
  c->out.append(json);
  Touch(c);
}

void Sink::Text(SinkConn* c, std::string_view payload) {
  ForEachEvent(payload, [&](const ScannedEvent& ev) {
    if (ev.type == "send_message") {
      std::string_view chat, temp, content;
      FindStringField(ev.body, "chat_id", &chat);
      FindStringField(ev.body, "temp_id", &temp);
      FindStringField(ev.body, "content", &content);
      uint64_t id = next_id_++;
      std::string ids = std::to_string(id);
      messages_++;
      Send(c, R"({"type":"message_sent","temp_id":")" + std::string(temp) + R"(","message_id":")" + ids +
                  R"(","chat_id":")" + std::string(chat) + R"(","created_at":"2026-01-01T00:00:00.000Z","cursor":")" +
                  ids + R"(","duplicate":false})");
      std::string json = R"({"type":"new_message","message":{"message_id":")" + ids + R"(","chat_id":")" +
                         std::string(chat) +
                         R"(","sender_id":"1","sender":{"user_id":"1","username":"sink","handle":"sink@sink",)"
                         R"("profile_picture_url":null},"message_type":"text","content":")" +
                         std::string(content) +
                         R"(","reply_to_message_id":null,"file_id":null,"created_at":"2026-01-01T00:00:00.000Z",)"
                         R"("is_edited":false,"is_deleted":false,"reactions":[]},"cursor":")" +
                         ids + "\"}";
      frame_.clear();
      AppendServerHeader(&frame_, kWsText, json.size());
      frame_ += json;
      auto it = chats_.find(strtoull(std::string(chat).c_str(), nullptr, 10));
      if (it == chats_.end()) return;
      for (SinkConn* m : it->second) {
        if (m == c) continue;
        m->out += frame_;
        deliveries_++;
        Touch(m);
      }
    } else if (ev.type == "auth") {
      std::string_view token;
      FindStringField(ev.body, "token", &token);
      if (token.substr(0, 5) == "sink:" && c->chat == 0) {
        c->chat = strtoull(std::string(token.substr(5)).c_str(), nullptr, 10);
        if (c->chat) chats_[c->chat].push_back(c);
      }
      Send(c, R"({"type":"auth_ok","user_id":"1","relay":"sink","device_id":"1","cursor":"0"})");
    } else if (ev.type == "ping") {
      Send(c, R"({"type":"pong"})");
    }
  });
}

void Sink::Flush(SinkConn* c) {
  if (c->closed) return;
  while (c->out_off < c->out.size()) {
    ssize_t n = send(c->fd, c->out.data() + c->out_off, c->out.size() - c->out_off, MSG_NOSIGNAL);
    if (n > 0) {
      c->out_off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
    Close(c);
    return;
  }
  bool pending = c->out_off < c->out.size();
  if (!pending) {
    c->out.clear();
    c->out_off = 0;
  } else if (c->out.size() - c->out_off > kMaxOut) {
    Close(c);  // a slow consumer
    return;
  } else if (c->out_off > (1u << 20)) {
    c->out.erase(0, c->out_off);
    c->out_off = 0;
  }
  if (pending != c->want_out) {
    epoll_event ev{};
    ev.events = EPOLLIN | (pending ? static_cast<uint32_t>(EPOLLOUT) : 0u);
    ev.data.fd = c->fd;
    epoll_ctl(ep_, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = pending;
  }
}

}  // namespace

int RunSink(const std::string& listen_addr, const std::string& port_file) {
  std::string host;
  int port = 0;
  if (!ParseHostPort(listen_addr, &host, &port) && listen_addr.substr(listen_addr.rfind(':') + 1) != "0") {
    fprintf(stderr, "chatctl: --listen must be HOST:PORT\n");
    return 2;
  }
  if (host.empty()) host = listen_addr.substr(0, listen_addr.rfind(':'));
  if (host == "localhost") host = "127.0.0.1";
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(fd, 4096) != 0) {
    fprintf(stderr, "chatctl: cannot listen on %s: %s\n", listen_addr.c_str(), strerror(errno));
    return 1;
  }
  socklen_t alen = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &alen);
  std::string bound = host + ":" + std::to_string(ntohs(a.sin_port));
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigprocmask(SIG_BLOCK, &sigs, nullptr);
  int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
  if (!port_file.empty()) {
    Status s = WriteFileAtomic(port_file, bound + "\n" + std::to_string(getpid()) + "\n", 0644);
    if (!s.ok()) {
      fprintf(stderr, "chatctl: %s\n", s.message().c_str());
      return 1;
    }
  }
  printf("sink listening on %s (pid %d); stop with Ctrl-C\n", bound.c_str(), getpid());
  fflush(stdout);
  Sink sink(fd, sfd);
  sink.Run();
  close(sfd);
  close(fd);
  return 0;
}

}  // namespace chatd::cli::bench
