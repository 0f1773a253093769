// The connection loop and step driver of the comparison engines. See bench_room_traffic.h.
#include "cli/bench_room_traffic.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "base/time.h"
#include "cli/bench_proc.h"
#include "cli/bench_report.h"
#include "cli/bench_scan.h"
#include "cli/bench_setup.h"

namespace chatd::cli::bench {

namespace {

constexpr int kMaxEvents = 1024;
constexpr size_t kScratch = 256 * 1024;
constexpr size_t kMaxOut = 64u << 20;  // bytes queued for one connection before it counts as stuck
constexpr uint64_t kMaxBurst = 20000;  // messages sent before reading again when behind
constexpr int kReadsPerWakeup = 4;

}  // namespace

Status CheckRoomShape(const RoomTrafficConfig& cfg) {
  if (cfg.traffic.rates.empty()) return BadRequest("no rates to run");
  if (cfg.rooms < 1 || cfg.members < 1) return BadRequest("--rooms and --members must be at least 1");
  return Status::Ok();
}

RoomTraffic::RoomTraffic(const RoomTrafficConfig& cfg, std::string protocol, std::string peer)
    : tc_(cfg.traffic),
      pid_(cfg.pid),
      members_(cfg.members),
      protocol_(std::move(protocol)),
      peer_(std::move(peer)),
      scratch_(kScratch) {}

RoomTraffic::~RoomTraffic() {
  for (auto& c : conns_) {
    if (c->fd >= 0) close(c->fd);
  }
  if (ep_ >= 0) close(ep_);
}

// ---- connections ----

Status RoomTraffic::Open(const std::string& address) {
  std::string host;
  int port = 0;
  if (!ParseHostPort(address, &host, &port)) return BadRequest("bad " + peer_ + " address " + address);
  peer_addr_.sin_family = AF_INET;
  peer_addr_.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &peer_addr_.sin_addr) != 1) {
    return BadRequest("the " + peer_ + " must be an IPv4 address");
  }
  if (tc_.sources > 1) sources_ = LoopbackSources(tc_.sources);
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  if (ep_ < 0) return IoError(std::string("epoll_create1: ") + strerror(errno));
  return Status::Ok();
}

void RoomTraffic::Add(std::unique_ptr<RoomConn> c, uint32_t room, bool publisher) {
  c->index = static_cast<uint32_t>(conns_.size());
  c->room = room;
  c->publisher = publisher;
  if (publisher) publishers_.push_back(c.get());
  conns_.push_back(std::move(c));
}

std::string RoomTraffic::ConnectingLine() const {
  return "connecting: " + std::to_string(ready_) + "/" + std::to_string(conns_.size());
}

Status RoomTraffic::ConnectAll(TrafficResult* res, std::string_view not_ready) {
  res->connections = static_cast<int>(conns_.size());
  res->deliveries_per_message = members_;
  t_connect_ = MonoNs();
  while (ready_ + counters_.connect_failures < conns_.size()) {
    if (MonoNs() - t_connect_ > static_cast<int64_t>(tc_.connect_timeout_s * 1e9)) break;
    Poll(MonoNs() + 50'000'000);
    if (tc_.progress) ProgressLine(ConnectingLine());
  }
  t_connected_ = MonoNs();
  res->connect_s = static_cast<double>(t_connected_ - t_connect_) / 1e9;
  res->ready = static_cast<int>(ready_);
  if (tc_.progress) ProgressLine("");
  if (ready_ == conns_.size()) return Status::Ok();
  std::string why = closes_.empty() ? std::string("timed out") : closes_.begin()->first;
  return Status(Code::kUnavailable, std::to_string(conns_.size() - ready_) + " of " + std::to_string(conns_.size()) +
                                        " connections " + std::string(not_ready) + " (" + why + ")");
}

void RoomTraffic::OpenQueued() {
  while (next_to_open_ < conns_.size() && connecting_ < static_cast<size_t>(tc_.max_connecting)) {
    StartConnect(conns_[next_to_open_++].get());
  }
}

void RoomTraffic::StartConnect(RoomConn* c) {
  std::string error;
  int fd = StartTcpConnect(peer_addr_, sources_.empty() ? 0 : sources_[c->index % sources_.size()], &error);
  if (fd < 0) {
    Fail(c, error, false);
    return;
  }
  c->fd = fd;
  c->state = RoomConn::kConnecting;
  connecting_++;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT;
  ev.data.u64 = c->index;
  epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
  c->want_out = true;
}

void RoomTraffic::Poll(int64_t until_ns) {
  OpenQueued();
  epoll_event evs[kMaxEvents];
  int n = WaitEvents(ep_, evs, kMaxEvents, dirty_.empty() ? until_ns - MonoNs() : 0, &no_pwait2_);
  for (int i = 0; i < n; ++i) OnIo(conns_[static_cast<size_t>(evs[i].data.u64)].get(), evs[i].events);
  for (RoomConn* c : dirty_) {
    c->dirty = false;
    Flush(c);
  }
  dirty_.clear();
}

void RoomTraffic::OnIo(RoomConn* c, uint32_t events) {
  if (c->state == RoomConn::kClosed) return;
  if (c->state == RoomConn::kConnecting) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      Fail(c, std::string("connect: ") + strerror(err), false);
    } else if (events & (EPOLLOUT | EPOLLIN)) {
      c->state = RoomConn::kHandshake;
      OnConnected(c);
      Flush(c);
    }
    return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    for (int i = 0; i < kReadsPerWakeup && c->state != RoomConn::kClosed; ++i) {
      ssize_t n = read(c->fd, scratch_.data(), scratch_.size());
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        Fail(c, n == 0 ? "the " + peer_ + " closed the connection" : std::string("read: ") + strerror(errno), true);
        return;
      }
      if (n < 0) break;
      counters_.reads++;
      counters_.bytes_in += static_cast<uint64_t>(n);
      Input(c, scratch_.data(), static_cast<size_t>(n), MonoNs());
      if (static_cast<size_t>(n) < scratch_.size()) break;
    }
  }
  if (c->state != RoomConn::kClosed && (events & EPOLLOUT)) Flush(c);
}

void RoomTraffic::Touch(RoomConn* c) {
  if (!c->dirty) {
    c->dirty = true;
    dirty_.push_back(c);
  }
}

void RoomTraffic::SetWantOut(RoomConn* c, bool on) {
  if (c->want_out == on || c->fd < 0) return;
  SetEpollOut(ep_, c->fd, c->index, on);
  c->want_out = on;
}

void RoomTraffic::Flush(RoomConn* c) {
  if (c->fd < 0 || c->state == RoomConn::kConnecting || c->state == RoomConn::kClosed) return;
  std::string error;
  if (!FlushOut(c->fd, &c->out, &c->out_off, &counters_, &error)) {
    Fail(c, error, true);
    return;
  }
  if (c->out.size() - c->out_off > kMaxOut) counters_.stuck++;
  SetWantOut(c, !c->out.empty());
}

void RoomTraffic::Fail(RoomConn* c, std::string_view why, bool by_server) {
  if (c->state == RoomConn::kClosed) return;
  if (c->state == RoomConn::kReady) {
    ready_--;
  } else {
    if (c->state != RoomConn::kQueued) connecting_--;
    counters_.connect_failures++;
  }
  if (by_server) counters_.closed_by_server++;
  if (c->fd >= 0) {
    close(c->fd);
    c->fd = -1;
  }
  c->state = RoomConn::kClosed;
  c->out.clear();
  c->out_off = 0;
  OnClosed(c);
  closes_[std::string(why)]++;
}

void RoomTraffic::MarkReady(RoomConn* c) {
  c->state = RoomConn::kReady;
  connecting_--;
  ready_++;
}

// ---- traffic ----

void RoomTraffic::StartProgress() {
  last_t_ = MonoNs();
  last_cpu_ = SampleProc(pid_).cpu_s;
  last_gen_ = SelfCpuSeconds();
}

// Sends every message due by `now` (at most kMaxBurst); returns when to come back.
int64_t RoomTraffic::SendDue(const Window& w, int64_t now) {
  const double rate = steps_[static_cast<size_t>(cur_)].rate;
  for (uint64_t burst = 0;; ++burst) {
    auto due = w.t_start + static_cast<int64_t>(static_cast<double>(step_sent_) * 1e9 / rate);
    if (due >= w.t_end) return w.t_end;
    if (due > now) return due;
    if (burst >= kMaxBurst) return now;
    Publish(publishers_[step_sent_ % publishers_.size()], due);
    step_sent_++;
  }
}

void RoomTraffic::Publish(RoomConn* p, int64_t intended) {
  if (p->state != RoomConn::kReady) {
    errors_["not_connected"]++;
    return;
  }
  uint64_t seq = p->sent.size();
  content_.clear();
  EncodeContent(&content_, Stamp{static_cast<uint32_t>(cur_), p->room, seq, intended}, tc_.size);
  if (!Send(p, seq, content_)) return;
  p->sent.push_back(SentMessage{intended, cur_, acked_when_written_});
  StepResult& st = steps_[static_cast<size_t>(cur_)];
  bool in_window = windows_[static_cast<size_t>(cur_)].Holds(intended);
  st.sent++;
  sent_++;
  if (in_window) st.sent_in_window++;
  st.expected += static_cast<uint64_t>(members_);
  expected_ += static_cast<uint64_t>(members_);
  if (acked_when_written_) {
    st.acked++;
    acked_++;
    if (in_window) st.acks_in_window++;
  }
}

void RoomTraffic::Ack(RoomConn* p, uint64_t seq, int64_t now) {
  SentMessage& m = p->sent[seq];
  m.done = true;
  StepResult& st = steps_[static_cast<size_t>(m.step)];
  st.acked++;
  acked_++;
  if (windows_[static_cast<size_t>(m.step)].Holds(m.t_ns)) st.ack.Record(now - m.t_ns);
  if (windows_[static_cast<size_t>(cur_)].Holds(now)) steps_[static_cast<size_t>(cur_)].acks_in_window++;
}

void RoomTraffic::Deliver(RoomConn* s, std::string_view content, int64_t now) {
  Stamp stamp;
  if (!DecodeContent(content, &stamp)) {
    errors_["foreign_payload"]++;
    return;
  }
  arrivals_++;
  if (cur_ >= 0 && windows_[static_cast<size_t>(cur_)].Holds(now)) steps_[static_cast<size_t>(cur_)].arrivals++;
  if (stamp.step >= steps_.size() || stamp.sender != s->room) {
    errors_["wrong_room"]++;
    return;
  }
  StepResult& st = steps_[stamp.step];
  uint64_t late_before = s->tracker.late();
  if (!s->tracker.Add(stamp.seq)) {
    st.duplicates++;
    return;
  }
  st.delivered++;
  delivered_++;
  if (s->tracker.late() != late_before) st.late++;
  if (windows_[stamp.step].Holds(stamp.t_ns)) st.delivery.Record(now - stamp.t_ns);
}

void RoomTraffic::Progress(const std::string& label) {
  int64_t now = MonoNs();
  double dt = static_cast<double>(now - last_t_) / 1e9;
  ProcSample p = SampleProc(pid_);
  double gen = SelfCpuSeconds();
  std::string line = label + " | sent " + Si(static_cast<double>(sent_ - last_sent_) / dt) + "/s deliv " +
                     Si(static_cast<double>(arrivals_ - last_arrivals_) / dt) + "/s";
  if (p.ok) line += " | " + peer_ + " " + Fixed(100 * (p.cpu_s - last_cpu_) / dt, 0) + "% cpu";
  ProgressLine(line + " | gen " + Fixed(100 * (gen - last_gen_) / dt, 0) + "% cpu");
  last_t_ = now;
  last_sent_ = sent_;
  last_arrivals_ = arrivals_;
  last_cpu_ = p.cpu_s;
  last_gen_ = gen;
}

// Runs step k (warmup, window, drain); returns whether it was sustained.
bool RoomTraffic::RunStep(size_t k) {
  Window w;
  w.t_start = MonoNs() + 50'000'000;
  w.t_measure = w.t_start + static_cast<int64_t>(tc_.warmup_s * 1e9);
  w.t_end = w.t_measure + static_cast<int64_t>(tc_.duration_s * 1e9);
  windows_.push_back(w);
  steps_.emplace_back();
  StepResult& sr = steps_.back();
  sr.rate = tc_.rates[k];
  sr.seconds = tc_.duration_s;
  cur_ = static_cast<int>(k);
  step_sent_ = 0;
  std::string label = protocol_ + " step " + std::to_string(k + 1) + "/" + std::to_string(tc_.rates.size()) + " @ " +
                      Si(sr.rate) + " msg/s";
  CpuMark c0;
  bool measuring = false;
  for (int64_t now = MonoNs(); now < w.t_end; now = MonoNs()) {
    if (!measuring && now >= w.t_measure) {
      c0 = MarkCpu(pid_);
      measuring = true;
    }
    int64_t wake = std::min(now >= w.t_start ? SendDue(w, now) : w.t_start, measuring ? w.t_end : w.t_measure);
    if (tc_.progress && now - last_t_ >= 1'000'000'000) Progress(label + (measuring ? "" : " (warmup)"));
    Poll(wake);
  }
  SetWindowCpu(c0, MarkCpu(pid_), &sr);
  // Drain: sending has stopped; wait for every acknowledgement and delivery owed.
  int64_t d0 = MonoNs();
  int64_t deadline = d0 + static_cast<int64_t>(tc_.drain_s * 1e9);
  while (acked_ < sent_ || delivered_ < expected_) {
    if (MonoNs() >= deadline) {
      sr.drain_timed_out = true;
      break;
    }
    if (tc_.progress && MonoNs() - last_t_ >= 1'000'000'000) Progress(label + " (drain)");
    Poll(std::min(deadline, MonoNs() + 100'000'000));
  }
  sr.drain_s = static_cast<double>(MonoNs() - d0) / 1e9;
  sr.sustained = Sustained(sr.rate * members_, static_cast<double>(sr.arrivals) / tc_.duration_s, sr.drain_s);
  if (tc_.progress) ProgressLine("");
  return sr.sustained;
}

void RoomTraffic::RunSteps(TrafficResult* res) {
  for (size_t k = 0; k < tc_.rates.size(); ++k) {
    if (!RunStep(k) && !tc_.all_steps) break;
  }
  for (StepResult& s : steps_) s.undelivered = s.expected > s.delivered ? s.expected - s.delivered : 0;
  res->steps = std::move(steps_);
  res->engine = counters_;
  res->closes = closes_;
  res->errors = errors_;
}

}  // namespace chatd::cli::bench
