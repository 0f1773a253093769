// The epoll WebSocket client engine. See bench_engine.h.
#include "cli/bench_engine.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "cli/bench_ws.h"

namespace chatd::cli::bench {

namespace {

constexpr size_t kScratch = 512 * 1024;
constexpr int kMaxEvents = 1024;
constexpr int kReadsPerWakeup = 4;

}  // namespace

int StartTcpConnect(const sockaddr_in& to, in_addr_t source, std::string* error) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + strerror(errno);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (source != 0) {
    // Pick the port at connect() time, per destination, not at bind() time.
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = source;
    if (bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
      *error = std::string("bind: ") + strerror(errno);
      close(fd);
      return -1;
    }
  }
  if (connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0 && errno != EINPROGRESS) {
    *error = std::string("connect: ") + strerror(errno);
    close(fd);
    return -1;
  }
  return fd;
}

bool WriteOut(int fd, const std::string& out, size_t* off, EngineCounters* counters, std::string* error) {
  while (*off < out.size()) {
    ssize_t n = send(fd, out.data() + *off, out.size() - *off, MSG_NOSIGNAL);
    if (n > 0) {
      counters->writes++;
      counters->bytes_out += static_cast<uint64_t>(n);
      *off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
    *error = std::string("write: ") + (n < 0 ? strerror(errno) : "no progress");
    return false;
  }
  return true;
}

bool FlushOut(int fd, std::string* out, size_t* off, EngineCounters* counters, std::string* error) {
  if (!WriteOut(fd, *out, off, counters, error)) return false;
  if (*off >= out->size()) {
    out->clear();
    *off = 0;
  } else if (*off > (1u << 20)) {
    out->erase(0, *off);
    *off = 0;
  }
  return true;
}

HttpHead ReadUpgradeResponse(std::string* rx, std::string* key, std::string* error) {
  size_t head_len = 0;
  int status = 0;
  std::string accept;
  HttpHead h = ParseResponseHead(*rx, &head_len, &status, &accept);
  if (h == HttpHead::kNeedMore) return h;
  if (h == HttpHead::kError || status != 101) {
    *error = "upgrade refused: " + rx->substr(0, std::min<size_t>(rx->find('\r'), 80));
    return HttpHead::kError;
  }
  if (accept != WsAccept(*key)) {
    *error = "upgrade: wrong Sec-WebSocket-Accept";
    return HttpHead::kError;
  }
  rx->erase(0, head_len);
  key->clear();
  key->shrink_to_fit();
  return HttpHead::kComplete;
}

void SetEpollOut(int ep, int fd, uint64_t index, bool on) {
  epoll_event ev{};
  ev.events = EPOLLIN | (on ? static_cast<uint32_t>(EPOLLOUT) : 0u);
  ev.data.u64 = index;
  epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

std::string AnswerClose(std::string* out, std::string_view payload, uint32_t mask_key, bool with_text) {
  int code = payload.size() >= 2
                 ? (static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1])
                 : 1005;
  std::string why = "closed by the server: " + std::to_string(code);
  if (with_text && payload.size() > 2) why += " " + std::string(payload.substr(2));
  AppendFrame(out, kWsClose, payload.size() >= 2 ? payload.substr(0, 2) : std::string_view(), mask_key);
  return why;
}

int WaitEvents(int ep, epoll_event* evs, int max_events, int64_t wait_ns, bool* no_pwait2) {
  wait_ns = std::max<int64_t>(0, wait_ns);
  if (!*no_pwait2) {
    timespec ts{static_cast<time_t>(wait_ns / 1'000'000'000), static_cast<long>(wait_ns % 1'000'000'000)};
    int n = epoll_pwait2(ep, evs, max_events, &ts, nullptr);
    if (n >= 0 || errno != ENOSYS) return n;
    *no_pwait2 = true;
  }
  int64_t ms = std::min<int64_t>((wait_ns + 999'999) / 1'000'000, 1000);
  return epoll_wait(ep, evs, max_events, static_cast<int>(ms));
}

Engine::Engine(EngineOptions opts, EngineHandler* handler)
    : opts_(std::move(opts)), handler_(handler), scratch_(kScratch) {
  ep_ = epoll_create1(EPOLL_CLOEXEC);
}

Engine::~Engine() {
  for (auto& c : conns_) {
    if (c->fd >= 0) close(c->fd);
  }
  if (ep_ >= 0) close(ep_);
}

Conn* Engine::Add(std::string token, int32_t room, int32_t role, uint32_t slot) {
  auto c = std::make_unique<Conn>();
  c->index = static_cast<uint32_t>(conns_.size());
  c->token = std::move(token);
  c->room = room;
  c->role = role;
  c->slot = slot;
  conns_.push_back(std::move(c));
  return conns_.back().get();
}

void Engine::Touch(Conn* c) {
  if (!c->dirty) {
    c->dirty = true;
    dirty_.push_back(c);
  }
}

void Engine::SendText(Conn* c, std::string_view json) {
  if (c->state == Conn::State::kClosed) return;
  AppendFrame(&c->out, kWsText, json, masks_.Next());
  Touch(c);
}

void Engine::SetWantOut(Conn* c, bool on) {
  if (c->want_out == on || c->fd < 0) return;
  SetEpollOut(ep_, c->fd, c->index, on);
  c->want_out = on;
}

bool Engine::StartConnect(Conn* c) {
  if (!opts_.sources.empty()) c->source = opts_.sources[next_source_++ % opts_.sources.size()];
  const sockaddr_in& to = opts_.alt_gateway.sin_port && c->role == opts_.alt_role ? opts_.alt_gateway : opts_.gateway;
  std::string error;
  int fd = StartTcpConnect(to, c->source, &error);
  if (fd < 0) {
    Fail(c, error, false);  // still queued: counted as a connect failure
    return false;
  }
  c->fd = fd;
  open_++;
  connecting_++;
  c->state = Conn::State::kConnecting;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT;
  ev.data.u64 = c->index;
  epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
  c->want_out = true;
  return true;
}

void Engine::OpenQueued() {
  while (next_to_open_ < conns_.size() && connecting_ < static_cast<size_t>(opts_.max_connecting)) {
    StartConnect(conns_[next_to_open_++].get());
  }
}

void Engine::Fail(Conn* c, std::string_view why, bool by_server) {
  if (c->state == Conn::State::kClosed) return;
  if (c->state == Conn::State::kReady) {
    ready_--;
  } else if (c->state != Conn::State::kQueued) {
    connecting_--;
    counters_.connect_failures++;
  } else {
    counters_.connect_failures++;
  }
  if (by_server) counters_.closed_by_server++;
  if (c->fd >= 0) {
    close(c->fd);
    c->fd = -1;
    open_--;
  }
  c->state = Conn::State::kClosed;
  c->out.clear();
  c->out.shrink_to_fit();
  c->out_off = 0;
  c->token.clear();
  c->token.shrink_to_fit();
  if (handler_) handler_->OnClosed(c, why);
}

void Engine::Close(Conn* c) {
  EngineHandler* h = handler_;
  handler_ = nullptr;
  Fail(c, "closed by us", false);
  handler_ = h;
}

void Engine::Poll(int64_t until_ns) {
  OpenQueued();
  epoll_event evs[kMaxEvents];
  int n = WaitEvents(ep_, evs, kMaxEvents, dirty_.empty() ? until_ns - MonoNs() : 0, &no_pwait2_);
  for (int i = 0; i < n; ++i) {
    Conn* c = conns_[static_cast<size_t>(evs[i].data.u64)].get();
    OnIo(c, evs[i].events);
  }
  for (Conn* c : dirty_) {
    c->dirty = false;
    Flush(c);
  }
  dirty_.clear();
}

void Engine::OnIo(Conn* c, uint32_t events) {
  if (c->state == Conn::State::kClosed) return;
  if (c->state == Conn::State::kConnecting) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      Fail(c, std::string("connect: ") + strerror(err), false);
      return;
    }
    if (!(events & (EPOLLOUT | EPOLLIN))) return;
    c->key = NewWsKey((static_cast<uint64_t>(c->index) << 20) ^ static_cast<uint64_t>(MonoNs()));
    bool alt = opts_.alt_gateway.sin_port && c->role == opts_.alt_role;
    c->out = UpgradeRequest(alt ? opts_.alt_host : opts_.host, opts_.path, c->key);
    c->out_off = 0;
    c->state = Conn::State::kUpgrading;
    Flush(c);
    return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) ReadAll(c);
  if (c->state != Conn::State::kClosed && (events & EPOLLOUT)) Flush(c);
}

void Engine::ReadAll(Conn* c) {
  for (int i = 0; i < kReadsPerWakeup && c->state != Conn::State::kClosed; ++i) {
    ssize_t n = read(c->fd, scratch_.data(), scratch_.size());
    if (n > 0) {
      counters_.reads++;
      counters_.bytes_in += static_cast<uint64_t>(n);
      Input(c, scratch_.data(), static_cast<size_t>(n), MonoNs());
      if (static_cast<size_t>(n) < scratch_.size()) return;
      continue;
    }
    if (n == 0) {
      Fail(c, "the server closed the connection", true);
      return;
    }
    if (errno == EAGAIN || errno == EINTR) return;
    Fail(c, std::string("read: ") + strerror(errno), true);
    return;
  }
}

void Engine::Input(Conn* c, char* data, size_t len, int64_t now) {
  if (c->state == Conn::State::kUpgrading) {
    c->rx.append(data, len);
    std::string error;
    HttpHead h = ReadUpgradeResponse(&c->rx, &c->key, &error);
    if (h == HttpHead::kError) Fail(c, error, true);
    if (h != HttpHead::kComplete) return;
    c->state = Conn::State::kAuthing;
    std::string auth = R"({"type":"auth","token":")" + c->token + "\"}";
    c->token.clear();
    c->token.shrink_to_fit();
    SendText(c, auth);
    if (c->rx.empty()) return;
    std::string rest = std::move(c->rx);
    c->rx.clear();
    size_t used = Frames(c, rest.data(), rest.size(), now);
    if (c->state != Conn::State::kClosed) c->rx.assign(rest, used, std::string::npos);
    return;
  }
  if (c->rx.empty()) {
    size_t used = Frames(c, data, len, now);
    if (c->state != Conn::State::kClosed && used < len) c->rx.assign(data + used, len - used);
  } else {
    c->rx.append(data, len);
    std::string buf = std::move(c->rx);
    c->rx.clear();
    size_t used = Frames(c, buf.data(), buf.size(), now);
    if (c->state != Conn::State::kClosed && used < buf.size()) {
      buf.erase(0, used);
      c->rx = std::move(buf);
    }
  }
  if (c->state == Conn::State::kClosed) {
    c->rx.clear();
    c->rx.shrink_to_fit();
  }
}

size_t Engine::Frames(Conn* c, char* data, size_t len, int64_t now) {
  WsRead r = ReadServerFrames(data, len, opts_.max_frame, /*close_text=*/true, &c->frag, &c->frag_opcode, &c->out,
                              &masks_, &counters_, [&](std::string_view text) {
                                Text(c, text, now);
                                return c->state != Conn::State::kClosed;
                              });
  if (r.answered) Touch(c);
  if (r.closed) Flush(c);
  if (!r.why.empty()) Fail(c, r.why, true);
  return r.used;
}

void Engine::Text(Conn* c, std::string_view payload, int64_t now) {
  ForEachEvent(payload, [&](const ScannedEvent& ev) {
    if (c->state == Conn::State::kReady) {
      counters_.events++;
      handler_->OnEvent(c, ev, now);
    } else if (c->state == Conn::State::kAuthing) {
      if (ev.type == "auth_ok") {
        c->state = Conn::State::kReady;
        connecting_--;
        ready_++;
        handler_->OnReady(c, now);
      } else if (ev.type == "error") {
        std::string_view msg;
        FindStringField(ev.body, "message", &msg);
        Fail(c, "auth refused: " + std::string(msg), true);
      }
    }
  });
}

void Engine::Flush(Conn* c) {
  if (c->state == Conn::State::kClosed || c->fd < 0) return;
  std::string error;
  if (!FlushOut(c->fd, &c->out, &c->out_off, &counters_, &error)) {
    Fail(c, error, true);
    return;
  }
  if (c->out.empty()) {
    if (c->want_out && c->state != Conn::State::kConnecting) SetWantOut(c, false);
    return;
  }
  if (c->out.size() - c->out_off > opts_.max_out) counters_.stuck++;
  SetWantOut(c, true);
}

}  // namespace chatd::cli::bench
