// The MQTT 3.1.1 client engine and step driver of `chatctl bench mqtt`. See bench_mqtt.h.
#include "cli/bench_mqtt.h"

#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <string_view>
#include <vector>

#include "base/time.h"
#include "cli/bench_engine.h"
#include "cli/bench_proc.h"
#include "cli/bench_report.h"
#include "cli/bench_scan.h"
#include "cli/bench_setup.h"

namespace chatd::cli::bench {

namespace {

// ---- MQTT 3.1.1 wire format (OASIS standard, sections 2 and 3) ----

enum PacketType : uint8_t { kConnect = 1, kConnack = 2, kPublish = 3, kPuback = 4, kSubscribe = 8, kSuback = 9 };

constexpr size_t kMaxPacket = 1u << 20;  // largest packet accepted from the broker
constexpr uint16_t kSubscribeId = 1;
constexpr uint32_t kPacketIds = 65535;  // packet ids are 1..65535

void PutU16(std::string* out, size_t v) {
  out->push_back(static_cast<char>((v >> 8) & 0xff));
  out->push_back(static_cast<char>(v & 0xff));
}

void PutStr(std::string* out, std::string_view s) {
  PutU16(out, s.size());
  out->append(s);
}

// The fixed header: type and flags, then the remaining length as a base-128 varint.
void PutHeader(std::string* out, uint8_t type, uint8_t flags, size_t remaining) {
  out->push_back(static_cast<char>(type << 4 | flags));
  do {
    auto b = static_cast<uint8_t>(remaining & 0x7f);
    remaining >>= 7;
    if (remaining) b |= 0x80;
    out->push_back(static_cast<char>(b));
  } while (remaining);
}

uint16_t GetU16(std::string_view s, size_t at) {
  return static_cast<uint16_t>(static_cast<uint8_t>(s[at]) << 8 | static_cast<uint8_t>(s[at + 1]));
}

// Protocol "MQTT" level 4, clean session, keep-alive off.
void AppendConnect(std::string* out, std::string_view client_id) {
  PutHeader(out, kConnect, 0, 10 + 2 + client_id.size());
  PutStr(out, "MQTT");
  out->push_back(4);
  out->push_back(0x02);
  PutU16(out, 0);
  PutStr(out, client_id);
}

void AppendSubscribe(std::string* out, std::string_view topic, int qos) {
  PutHeader(out, kSubscribe, 0x2, 2 + 2 + topic.size() + 1);
  PutU16(out, kSubscribeId);
  PutStr(out, topic);
  out->push_back(static_cast<char>(qos));
}

void AppendPublish(std::string* out, std::string_view topic, int qos, uint16_t id, std::string_view payload) {
  PutHeader(out, kPublish, static_cast<uint8_t>(qos << 1), 2 + topic.size() + (qos ? 2 : 0) + payload.size());
  PutStr(out, topic);
  if (qos) PutU16(out, id);
  out->append(payload);
}

void AppendPuback(std::string* out, uint16_t id) {
  PutHeader(out, kPuback, 0, 2);
  PutU16(out, id);
}

struct Packet {
  uint8_t type = 0, flags = 0;
  std::string_view body;  // the variable header and payload
};

enum class Decode { kPacket, kNeedMore, kError };

// Decodes the packet at the start of [data, data+len); *used is its length.
Decode DecodePacket(const char* data, size_t len, Packet* p, size_t* used) {
  size_t remaining = 0, i = 1;
  for (int shift = 0;; shift += 7, ++i) {
    if (i >= len) return Decode::kNeedMore;
    if (i > 4) return Decode::kError;  // a remaining length has at most 4 bytes
    auto b = static_cast<uint8_t>(data[i]);
    remaining |= static_cast<size_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) break;
  }
  ++i;
  if (remaining > kMaxPacket) return Decode::kError;
  if (len - i < remaining) return Decode::kNeedMore;
  p->type = static_cast<uint8_t>(data[0]) >> 4;
  p->flags = static_cast<uint8_t>(data[0]) & 0x0f;
  p->body = std::string_view(data + i, remaining);
  *used = i + remaining;
  return Decode::kPacket;
}

// ---- connections ----

struct Sent {
  int64_t t_ns = 0;  // intended send time
  int32_t step = -1;
  bool done = false;  // acknowledged
};

struct MConn {
  enum class State : uint8_t { kQueued, kConnecting, kConnack, kSuback, kReady, kClosed };
  State state = State::kQueued;
  bool publisher = false;
  bool dirty = false, want_out = false;
  int fd = -1;
  uint32_t index = 0;
  uint32_t room = 0;
  std::string topic;
  std::string out;  // bytes not yet written, from out_off
  size_t out_off = 0;
  std::string rx;  // an incomplete packet
  // A subscriber's view of its room's publisher.
  SeqTracker tracker;
  // A publisher's messages by sequence number; the packet id of message `seq` is
  // seq % 65535 + 1, and a QoS 1 broker acknowledges in order (MQTT 3.1.1, 4.6).
  std::vector<Sent> sent;
  uint64_t unacked_from = 0;  // lowest sequence number not yet acknowledged
};

struct Window {
  int64_t t_start = 0, t_measure = 0, t_end = 0;
  bool Holds(int64_t t) const { return t >= t_measure && t < t_end; }
};

constexpr int kMaxEvents = 1024;
constexpr size_t kScratch = 256 * 1024;
constexpr size_t kMaxOut = 64u << 20;  // bytes queued for one connection before it counts as stuck
constexpr uint64_t kMaxBurst = 20000;  // messages sent before reading again when behind

class MqttBench {
 public:
  explicit MqttBench(const MqttConfig& cfg) : cfg_(cfg), tc_(cfg.traffic), scratch_(kScratch) {}
  ~MqttBench() {
    for (auto& c : conns_) {
      if (c->fd >= 0) close(c->fd);
    }
    if (ep_ >= 0) close(ep_);
  }
  MqttBench(const MqttBench&) = delete;
  MqttBench& operator=(const MqttBench&) = delete;

  // Opens every connection; an error unless all of them are ready.
  Status Connect(TrafficResult* res);
  // Runs step k (warmup, window, drain); returns whether it was sustained.
  bool RunStep(size_t k);
  // Hands the steps and counters over; the last call.
  void Finish(TrafficResult* res);

 private:
  void OpenQueued();
  void StartConnect(MConn* c);
  void Poll(int64_t until_ns);
  void OnIo(MConn* c, uint32_t events);
  void Input(MConn* c, const char* data, size_t len, int64_t now);
  size_t Packets(MConn* c, const char* data, size_t len, int64_t now);
  void OnPacket(MConn* c, const Packet& p, int64_t now);
  void Flush(MConn* c);
  void Fail(MConn* c, std::string_view why, bool by_server);
  void Touch(MConn* c);
  void SetWantOut(MConn* c, bool on);

  int64_t SendDue(const Window& w, int64_t now);
  void Publish(MConn* p, int64_t intended);
  void OnPuback(MConn* p, uint16_t id, int64_t now);
  void OnDelivery(MConn* s, std::string_view payload, int64_t now);
  void Progress(const std::string& label);

  const MqttConfig& cfg_;
  const TrafficConfig& tc_;
  sockaddr_in broker_{};
  std::vector<in_addr_t> sources_;
  int ep_ = -1;
  bool no_pwait2_ = false;
  std::vector<std::unique_ptr<MConn>> conns_;
  std::vector<MConn*> publishers_;
  std::vector<MConn*> dirty_;
  std::vector<char> scratch_;
  std::string buf_;
  size_t next_to_open_ = 0, connecting_ = 0, ready_ = 0;
  EngineCounters counters_;
  std::map<std::string, uint64_t> closes_, errors_;
  // The steps so far; cur_ is the one being sent.
  std::vector<Window> windows_;
  std::vector<StepResult> steps_;
  int cur_ = -1;
  uint64_t step_sent_ = 0;
  uint64_t sent_ = 0, acked_ = 0, arrivals_ = 0, expected_ = 0, delivered_ = 0;
  // Progress display: totals and CPU at the last line.
  int64_t last_t_ = 0;
  uint64_t last_sent_ = 0, last_arrivals_ = 0;
  double last_cpu_ = 0, last_gen_ = 0;
};

Status MqttBench::Connect(TrafficResult* res) {
  std::string host;
  int port = 0;
  if (!ParseHostPort(cfg_.broker, &host, &port)) return BadRequest("bad broker address " + cfg_.broker);
  broker_.sin_family = AF_INET;
  broker_.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &broker_.sin_addr) != 1) return BadRequest("the broker must be an IPv4 address");
  if (tc_.sources > 1) sources_ = LoopbackSources(tc_.sources);
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  if (ep_ < 0) return IoError(std::string("epoll_create1: ") + strerror(errno));
  // Subscribers first, so every room is listening before its publisher connects.
  std::string prefix = "bm" + std::to_string(getpid()) + "-";
  for (int pass = 0; pass < 2; ++pass) {
    for (int r = 0; r < cfg_.rooms; ++r) {
      for (int m = 0; m < (pass ? 1 : cfg_.members); ++m) {
        auto c = std::make_unique<MConn>();
        c->index = static_cast<uint32_t>(conns_.size());
        c->room = static_cast<uint32_t>(r);
        c->publisher = pass == 1;
        c->topic = "room/" + std::to_string(r);
        std::string id = prefix + (pass ? "p" : "s") + std::to_string(r) + (pass ? "" : "-" + std::to_string(m));
        AppendConnect(&c->out, id);
        if (c->publisher) publishers_.push_back(c.get());
        conns_.push_back(std::move(c));
      }
    }
  }
  res->connections = static_cast<int>(conns_.size());
  res->deliveries_per_message = cfg_.members;
  int64_t t0 = MonoNs();
  while (ready_ + counters_.connect_failures < conns_.size()) {
    if (MonoNs() - t0 > static_cast<int64_t>(tc_.connect_timeout_s * 1e9)) break;
    Poll(MonoNs() + 50'000'000);
    if (tc_.progress) ProgressLine("connecting: " + std::to_string(ready_) + "/" + std::to_string(conns_.size()));
  }
  res->connect_s = static_cast<double>(MonoNs() - t0) / 1e9;
  res->ready = static_cast<int>(ready_);
  if (tc_.progress) ProgressLine("");
  last_t_ = MonoNs();
  last_cpu_ = SampleProc(cfg_.pid).cpu_s;
  last_gen_ = SelfCpuSeconds();
  if (ready_ == conns_.size()) return Status::Ok();
  std::string why = closes_.empty() ? std::string("timed out") : closes_.begin()->first;
  return Status(Code::kUnavailable, std::to_string(conns_.size() - ready_) + " of " + std::to_string(conns_.size()) +
                                        " connections failed (" + why + ")");
}

void MqttBench::OpenQueued() {
  while (next_to_open_ < conns_.size() && connecting_ < static_cast<size_t>(tc_.max_connecting)) {
    StartConnect(conns_[next_to_open_++].get());
  }
}

void MqttBench::StartConnect(MConn* c) {
  std::string error;
  int fd = StartTcpConnect(broker_, sources_.empty() ? 0 : sources_[c->index % sources_.size()], &error);
  if (fd < 0) {
    Fail(c, error, false);
    return;
  }
  c->fd = fd;
  c->state = MConn::State::kConnecting;
  connecting_++;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT;
  ev.data.u64 = c->index;
  epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
  c->want_out = true;
}

void MqttBench::Poll(int64_t until_ns) {
  OpenQueued();
  epoll_event evs[kMaxEvents];
  int n = WaitEvents(ep_, evs, kMaxEvents, dirty_.empty() ? until_ns - MonoNs() : 0, &no_pwait2_);
  for (int i = 0; i < n; ++i) OnIo(conns_[static_cast<size_t>(evs[i].data.u64)].get(), evs[i].events);
  for (MConn* c : dirty_) {
    c->dirty = false;
    Flush(c);
  }
  dirty_.clear();
}

void MqttBench::OnIo(MConn* c, uint32_t events) {
  if (c->state == MConn::State::kClosed) return;
  if (c->state == MConn::State::kConnecting) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      Fail(c, std::string("connect: ") + strerror(err), false);
    } else if (events & (EPOLLOUT | EPOLLIN)) {
      c->state = MConn::State::kConnack;
      Flush(c);  // the CONNECT queued by Connect()
    }
    return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    for (int i = 0; i < 4 && c->state != MConn::State::kClosed; ++i) {
      ssize_t n = read(c->fd, scratch_.data(), scratch_.size());
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        Fail(c, n == 0 ? "the broker closed the connection" : std::string("read: ") + strerror(errno), true);
        return;
      }
      if (n < 0) break;
      counters_.reads++;
      counters_.bytes_in += static_cast<uint64_t>(n);
      Input(c, scratch_.data(), static_cast<size_t>(n), MonoNs());
      if (static_cast<size_t>(n) < scratch_.size()) break;
    }
  }
  if (c->state != MConn::State::kClosed && (events & EPOLLOUT)) Flush(c);
}

void MqttBench::Input(MConn* c, const char* data, size_t len, int64_t now) {
  c->rx.append(data, len);
  size_t pos = 0;
  while (c->state != MConn::State::kClosed) {
    Packet p;
    size_t used = 0;
    Decode d = DecodePacket(c->rx.data() + pos, c->rx.size() - pos, &p, &used);
    if (d == Decode::kNeedMore) break;
    if (d == Decode::kError) {
      Fail(c, "malformed packet from the broker", true);
      break;
    }
    pos += used;
    counters_.frames_in++;
    OnPacket(c, p, now);
  }
  c->rx.erase(0, c->state == MConn::State::kClosed ? c->rx.size() : pos);
}

void MqttBench::OnPacket(MConn* c, const Packet& p, int64_t now) {
  auto ready = [&] {
    c->state = MConn::State::kReady;
    connecting_--;
    ready_++;
  };
  switch (p.type) {
    case kConnack:
      if (c->state != MConn::State::kConnack || p.body.size() < 2) {
        Fail(c, "unexpected CONNACK", true);
      } else if (p.body[1] != 0) {
        Fail(c, "connection refused (CONNACK code " + std::to_string(static_cast<uint8_t>(p.body[1])) + ")", true);
      } else if (c->publisher) {
        ready();
      } else {
        c->state = MConn::State::kSuback;
        AppendSubscribe(&c->out, c->topic, cfg_.qos);
        Touch(c);
      }
      break;
    case kSuback:
      if (c->state != MConn::State::kSuback || p.body.size() < 3 || GetU16(p.body, 0) != kSubscribeId) {
        Fail(c, "unexpected SUBACK", true);
      } else if (static_cast<uint8_t>(p.body[2]) == 0x80) {
        Fail(c, "subscription refused", true);
      } else {
        ready();
      }
      break;
    case kPublish: {
      int qos = (p.flags >> 1) & 3;
      size_t topic_len = p.body.size() >= 2 ? GetU16(p.body, 0) : SIZE_MAX;
      size_t payload_at = topic_len == SIZE_MAX ? SIZE_MAX : 2 + topic_len + (qos ? 2 : 0);
      if (qos > 1 || payload_at > p.body.size()) {
        Fail(c, qos > 1 ? "QoS 2 PUBLISH (never subscribed for)" : "malformed PUBLISH", true);
        break;
      }
      counters_.events++;
      if (qos == 1) {
        AppendPuback(&c->out, GetU16(p.body, 2 + topic_len));
        Touch(c);
      }
      if (!c->publisher && c->state == MConn::State::kReady) OnDelivery(c, p.body.substr(payload_at), now);
      break;
    }
    case kPuback:
      if (c->publisher && p.body.size() >= 2) OnPuback(c, GetU16(p.body, 0), now);
      break;
    default:
      break;  // PINGRESP, UNSUBACK: not expected, ignored
  }
}

void MqttBench::Touch(MConn* c) {
  if (!c->dirty) {
    c->dirty = true;
    dirty_.push_back(c);
  }
}

void MqttBench::SetWantOut(MConn* c, bool on) {
  if (c->want_out == on || c->fd < 0) return;
  epoll_event ev{};
  ev.events = EPOLLIN | (on ? static_cast<uint32_t>(EPOLLOUT) : 0u);
  ev.data.u64 = c->index;
  epoll_ctl(ep_, EPOLL_CTL_MOD, c->fd, &ev);
  c->want_out = on;
}

void MqttBench::Flush(MConn* c) {
  if (c->fd < 0 || c->state == MConn::State::kConnecting || c->state == MConn::State::kClosed) return;
  std::string error;
  if (!WriteOut(c->fd, c->out, &c->out_off, &counters_, &error)) {
    Fail(c, error, true);
    return;
  }
  bool pending = c->out_off < c->out.size();
  if (!pending) {
    c->out.clear();
    c->out_off = 0;
  } else if (c->out.size() - c->out_off > kMaxOut) {
    counters_.stuck++;
  }
  SetWantOut(c, pending);
}

void MqttBench::Fail(MConn* c, std::string_view why, bool by_server) {
  if (c->state == MConn::State::kClosed) return;
  if (c->state == MConn::State::kReady) {
    ready_--;
  } else {
    if (c->state != MConn::State::kQueued) connecting_--;
    counters_.connect_failures++;
  }
  if (by_server) counters_.closed_by_server++;
  if (c->fd >= 0) {
    close(c->fd);
    c->fd = -1;
  }
  c->state = MConn::State::kClosed;
  c->out.clear();
  c->out_off = 0;
  closes_[std::string(why)]++;
}

// ---- traffic ----

// Sends every message due by `now` (at most kMaxBurst); returns when to come back.
int64_t MqttBench::SendDue(const Window& w, int64_t now) {
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

void MqttBench::Publish(MConn* p, int64_t intended) {
  if (p->state != MConn::State::kReady) {
    errors_["not_connected"]++;
    return;
  }
  uint64_t seq = p->sent.size();
  if (cfg_.qos == 1 && seq - p->unacked_from >= kPacketIds) {
    errors_["no_free_packet_id"]++;
    return;
  }
  p->sent.push_back(Sent{intended, cur_, cfg_.qos == 0});
  buf_.clear();
  EncodeContent(&buf_, Stamp{static_cast<uint32_t>(cur_), p->room, seq, intended}, tc_.size);
  AppendPublish(&p->out, p->topic, cfg_.qos, static_cast<uint16_t>(seq % kPacketIds + 1), buf_);
  Touch(p);
  StepResult& st = steps_[static_cast<size_t>(cur_)];
  bool in_window = windows_[static_cast<size_t>(cur_)].Holds(intended);
  st.sent++;
  sent_++;
  if (in_window) st.sent_in_window++;
  st.expected += static_cast<uint64_t>(cfg_.members);
  expected_ += static_cast<uint64_t>(cfg_.members);
  if (cfg_.qos == 0) {  // nothing comes back: written is acknowledged
    st.acked++;
    acked_++;
    if (in_window) st.acks_in_window++;
  }
}

void MqttBench::OnPuback(MConn* p, uint16_t id, int64_t now) {
  // The one unacknowledged message that packet id `id` can name.
  uint64_t base = p->unacked_from;
  uint64_t seq = base + (id + 2 * kPacketIds - 1 - base % kPacketIds) % kPacketIds;
  if (id == 0 || seq >= p->sent.size() || p->sent[seq].done) {
    errors_["unexpected_puback"]++;
    return;
  }
  Sent& m = p->sent[seq];
  m.done = true;
  while (p->unacked_from < p->sent.size() && p->sent[p->unacked_from].done) p->unacked_from++;
  StepResult& st = steps_[static_cast<size_t>(m.step)];
  st.acked++;
  acked_++;
  if (windows_[static_cast<size_t>(m.step)].Holds(m.t_ns)) st.ack.Record(now - m.t_ns);
  if (windows_[static_cast<size_t>(cur_)].Holds(now)) steps_[static_cast<size_t>(cur_)].acks_in_window++;
}

void MqttBench::OnDelivery(MConn* s, std::string_view payload, int64_t now) {
  Stamp stamp;
  if (!DecodeContent(payload, &stamp)) {
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

void MqttBench::Progress(const std::string& label) {
  int64_t now = MonoNs();
  double dt = static_cast<double>(now - last_t_) / 1e9;
  ProcSample p = SampleProc(cfg_.pid);
  double gen = SelfCpuSeconds();
  std::string line = label + " | sent " + Si(static_cast<double>(sent_ - last_sent_) / dt) + "/s deliv " +
                     Si(static_cast<double>(arrivals_ - last_arrivals_) / dt) + "/s";
  if (p.ok) line += " | broker " + Fixed(100 * (p.cpu_s - last_cpu_) / dt, 0) + "% cpu";
  ProgressLine(line + " | gen " + Fixed(100 * (gen - last_gen_) / dt, 0) + "% cpu");
  last_t_ = now;
  last_sent_ = sent_;
  last_arrivals_ = arrivals_;
  last_cpu_ = p.cpu_s;
  last_gen_ = gen;
}

bool MqttBench::RunStep(size_t k) {
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
  std::string label =
      "mqtt step " + std::to_string(k + 1) + "/" + std::to_string(tc_.rates.size()) + " @ " + Si(sr.rate) + " msg/s";
  CpuMark c0;
  bool measuring = false;
  for (int64_t now = MonoNs(); now < w.t_end; now = MonoNs()) {
    if (!measuring && now >= w.t_measure) {
      c0 = MarkCpu(cfg_.pid);
      measuring = true;
    }
    int64_t wake = std::min(now >= w.t_start ? SendDue(w, now) : w.t_start, measuring ? w.t_end : w.t_measure);
    if (tc_.progress && now - last_t_ >= 1'000'000'000) Progress(label + (measuring ? "" : " (warmup)"));
    Poll(wake);
  }
  SetWindowCpu(c0, MarkCpu(cfg_.pid), &sr);
  // Drain: sending has stopped; wait for every PUBACK and delivery owed.
  int64_t d0 = MonoNs();
  int64_t deadline = d0 + static_cast<int64_t>(tc_.drain_s * 1e9);
  while (acked_ < sent_ || delivered_ < expected_) {
    if (MonoNs() >= deadline) {
      sr.drain_timed_out = true;
      break;
    }
    Poll(deadline);
  }
  sr.drain_s = static_cast<double>(MonoNs() - d0) / 1e9;
  sr.sustained = Sustained(sr.rate * cfg_.members, static_cast<double>(sr.arrivals) / tc_.duration_s, sr.drain_s);
  if (tc_.progress) ProgressLine("");
  return sr.sustained;
}

void MqttBench::Finish(TrafficResult* res) {
  for (StepResult& s : steps_) s.undelivered = s.expected > s.delivered ? s.expected - s.delivered : 0;
  res->steps = std::move(steps_);
  res->engine = counters_;
  res->closes = closes_;
  res->errors = errors_;
}

}  // namespace

Result<TrafficResult> RunMqtt(const MqttConfig& cfg) {
  if (cfg.traffic.rates.empty()) return BadRequest("no rates to run");
  if (cfg.qos != 0 && cfg.qos != 1) return BadRequest("--qos must be 0 or 1");
  if (cfg.rooms < 1 || cfg.members < 1) return BadRequest("--rooms and --members must be at least 1");
  TrafficResult res;
  res.server_rss_before_kb = SampleProc(cfg.pid).rss_kb;
  auto bench = std::make_unique<MqttBench>(cfg);
  if (Status s = bench->Connect(&res); !s.ok()) return s;
  for (size_t k = 0; k < cfg.traffic.rates.size(); ++k) {
    if (!bench->RunStep(k) && !cfg.traffic.all_steps) break;
  }
  bench->Finish(&res);
  return res;
}

}  // namespace chatd::cli::bench
