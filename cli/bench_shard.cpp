// One generator thread of the traffic scenarios. See bench_shard.h.
#include "cli/bench_shard.h"

#include <algorithm>

namespace chatd::cli::bench {

namespace {

constexpr int64_t kTick = 20'000'000;  // longest sleep between checks of the Control
constexpr uint64_t kMaxBurst = 20000;  // messages sent before reading again when behind

bool ParseSeq(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

}  // namespace

Shard::Shard(const EngineOptions& eo, const Setup& setup, std::vector<int> rooms, const TrafficConfig& cfg,
             Control* control)
    : setup_(setup), cfg_(cfg), control_(control), engine_(eo, this), rooms_(std::move(rooms)) {
  senders_per_room_ = setup.rooms.empty() ? 1 : static_cast<int>(setup.rooms[0].senders.size());
  receivers_in_room_.assign(setup.rooms.size(), 0);
  buf_.reserve(cfg.size + 256);
}

void Shard::Run() {
  Connect();
  live.connected.store(true, std::memory_order_release);
  if (!control_->stop.load()) Loop();
}

void Shard::Connect() {
  // Receivers first, so every receiver is listening before any sender is ready.
  for (int r : rooms_) {
    const Room& room = setup_.rooms[static_cast<size_t>(r)];
    receivers_in_room_[static_cast<size_t>(r)] = static_cast<int>(room.receivers.size());
    for (const Member& m : room.receivers) {
      Receiver rc;
      rc.room = r;
      rc.trackers.resize(room.senders.size());
      rc.conn = engine_.Add(m.token, r, 1, static_cast<uint32_t>(receivers_.size()));
      receivers_.push_back(std::move(rc));
    }
  }
  for (int r : rooms_) {
    const Room& room = setup_.rooms[static_cast<size_t>(r)];
    for (size_t k = 0; k < room.senders.size(); ++k) {
      Sender s;
      s.room = r;
      s.gid = static_cast<uint32_t>(r * senders_per_room_ + static_cast<int>(k));
      s.chat = std::to_string(room.chat_id);
      s.conn = engine_.Add(room.senders[k].token, r, 0, static_cast<uint32_t>(senders_.size()));
      senders_.push_back(std::move(s));
    }
  }
  while (!control_->stop.load(std::memory_order_relaxed)) {
    engine_.Poll(MonoNs() + 50'000'000);
    size_t failed = engine_.counters().connect_failures;
    live.ready.store(engine_.ready(), std::memory_order_relaxed);
    live.failed.store(failed, std::memory_order_relaxed);
    if (engine_.ready() + failed >= engine_.total()) break;
  }
}

void Shard::BeginStep(int k) {
  cur_ = k;
  step_sent_ = 0;
  loop_started_ = false;
  double share = control_->total_senders > 0
                     ? static_cast<double>(senders_.size()) / static_cast<double>(control_->total_senders)
                     : 0.0;
  shard_rate_ = plans_[static_cast<size_t>(k)].rate * share;
}

void Shard::Loop() {
  while (!control_->stop.load(std::memory_order_relaxed)) {
    int published = control_->published.load(std::memory_order_acquire);
    if (published > static_cast<int>(plans_.size())) {
      std::lock_guard<std::mutex> lock(control_->mu);
      plans_.assign(control_->steps.begin(), control_->steps.begin() + published);
      steps_.resize(static_cast<size_t>(published));
    }
    if (published - 1 > cur_) BeginStep(published - 1);
    int64_t now = MonoNs();
    int64_t wake = now + kTick;
    if (cur_ >= 0 && !senders_.empty()) {
      const StepPlan& st = plans_[static_cast<size_t>(cur_)];
      if (now < st.t_start) {
        wake = std::min(wake, st.t_start);
      } else if (now < st.t_end) {
        if (st.rate > 0 && shard_rate_ > 0) {
          for (uint64_t burst = 0;; ++burst) {
            auto due = st.t_start + static_cast<int64_t>(static_cast<double>(step_sent_) * 1e9 / shard_rate_);
            if (due >= st.t_end) break;
            if (due > now) {
              wake = std::min(wake, due);
              break;
            }
            if (burst >= kMaxBurst) {
              wake = now;
              break;
            }
            SendOne(senders_[step_sent_ % senders_.size()], due);
            step_sent_++;
          }
        } else if (st.rate <= 0 && !loop_started_) {
          loop_started_ = true;
          for (Sender& s : senders_) {
            for (int w = 0; w < cfg_.window; ++w) SendOne(s, now);
          }
        }
        wake = std::min(wake, st.t_end);
      }
    }
    engine_.Poll(wake);
    Publish();
  }
}

void Shard::SendOne(Sender& s, int64_t intended) {
  if (s.conn->state != Conn::State::kReady) {
    errors_["not_connected"]++;
    return;
  }
  uint64_t seq = s.sent.size();
  s.sent.push_back(Sent{intended, cur_, false});
  buf_.clear();
  buf_ += R"({"type":"send_message","chat_id":")";
  buf_ += s.chat;
  buf_ += R"(","message_type":"text","content":")";
  EncodeContent(&buf_, Stamp{static_cast<uint32_t>(cur_), s.gid, seq, intended}, cfg_.size);
  buf_ += R"(","temp_id":")";
  buf_ += std::to_string(seq);
  buf_ += "\"}";
  engine_.SendText(s.conn, buf_);
  s.outstanding++;
  ShardStep& st = steps_[static_cast<size_t>(cur_)];
  st.sent++;
  const StepPlan& plan = plans_[static_cast<size_t>(cur_)];
  if (intended >= plan.t_measure && intended < plan.t_end) st.sent_in_window++;
  sent_++;
}

void Shard::OnReady(Conn*, int64_t) {}

void Shard::OnClosed(Conn*, std::string_view why) { closes_[std::string(why)]++; }

void Shard::OnEvent(Conn* c, const ScannedEvent& ev, int64_t now) {
  if (c->role == 0) {
    Sender& s = senders_[c->slot];
    if (ev.type == "message_sent") {
      OnAck(s, ev, now, true);
    } else if (ev.type == "error") {
      OnAck(s, ev, now, false);
    } else if (ev.type == "new_message") {
      OnDelivery(ev, now, nullptr);  // another sender's message, in a room with several
    }
    return;
  }
  if (ev.type == "new_message") OnDelivery(ev, now, &receivers_[c->slot]);
}

void Shard::OnAck(Sender& s, const ScannedEvent& ev, int64_t now, bool ok) {
  std::string_view ref;
  uint64_t seq = 0;
  if (!FindStringField(ev.body, ok ? "temp_id" : "ref", &ref) || !ParseSeq(ref, &seq) || seq >= s.sent.size()) {
    if (!ok) {
      std::string_view code;
      FindStringField(ev.body, "code", &code);
      errors_[std::string(code)]++;
    }
    return;
  }
  Sent& m = s.sent[seq];
  if (m.done) return;  // acknowledged twice
  m.done = true;
  s.outstanding--;
  ShardStep& st = steps_[static_cast<size_t>(m.step)];
  const StepPlan& plan = plans_[static_cast<size_t>(m.step)];
  if (ok) {
    st.acked++;
    acked_++;
    if (m.t_ns >= plan.t_measure && m.t_ns < plan.t_end) st.ack.Record(now - m.t_ns);
    auto owed = static_cast<uint64_t>(receivers_in_room_[static_cast<size_t>(s.room)]);
    st.expected += owed;
    expected_ += owed;
  } else {
    st.errors++;
    errors_n_++;
    std::string_view code;
    FindStringField(ev.body, "code", &code);
    errors_[std::string(code)]++;
  }
  const StepPlan& cur = plans_[static_cast<size_t>(cur_)];
  if (now >= cur.t_measure && now < cur.t_end && ok) steps_[static_cast<size_t>(cur_)].acks_in_window++;
  if (cur.rate <= 0 && now < cur.t_end && s.conn->state == Conn::State::kReady) SendOne(s, now);
}

void Shard::OnDelivery(const ScannedEvent& ev, int64_t now, Receiver* r) {
  std::string_view content;
  Stamp stamp;
  if (!FindStringField(ev.body, "content", &content) || !DecodeContent(content, &stamp)) return;
  arrivals_++;
  if (cur_ >= 0) {
    const StepPlan& cur = plans_[static_cast<size_t>(cur_)];
    if (now >= cur.t_measure && now < cur.t_end) steps_[static_cast<size_t>(cur_)].arrivals++;
  }
  if (!r || stamp.step >= steps_.size()) return;
  int k = static_cast<int>(stamp.sender) - r->room * senders_per_room_;
  if (k < 0 || k >= static_cast<int>(r->trackers.size())) return;
  SeqTracker& t = r->trackers[static_cast<size_t>(k)];
  uint64_t late_before = t.late();
  bool fresh = t.Add(stamp.seq);
  ShardStep& st = steps_[stamp.step];
  if (!fresh) {
    st.duplicates++;
    return;
  }
  st.delivered++;
  delivered_++;
  if (t.late() != late_before) st.late++;
  const StepPlan& plan = plans_[stamp.step];
  if (stamp.t_ns >= plan.t_measure && stamp.t_ns < plan.t_end) st.delivery.Record(now - stamp.t_ns);
}

void Shard::Publish() {
  live.sent.store(sent_, std::memory_order_relaxed);
  live.acked.store(acked_, std::memory_order_relaxed);
  live.errors.store(errors_n_, std::memory_order_relaxed);
  live.arrivals.store(arrivals_, std::memory_order_relaxed);
  live.expected.store(expected_, std::memory_order_relaxed);
  live.delivered.store(delivered_, std::memory_order_relaxed);
  live.ready.store(engine_.ready(), std::memory_order_relaxed);
}

}  // namespace chatd::cli::bench
