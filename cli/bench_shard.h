// cli/bench_shard.h — one generator thread of the traffic scenarios (internal to
// bench_traffic.cpp): an Engine with the senders and receivers of some rooms, sending on
// the step schedule the main thread publishes in a Control and accounting for every ack
// and delivery.
//
// Threads: Run() is the shard's thread body; everything but `live` and the Control's
// atomics belongs to that thread until Run() returns, after which the main thread reads
// stats(). The main thread publishes steps through Control (mutex + release counter) and
// reads progress from `live` (relaxed atomics).
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cli/bench_engine.h"
#include "cli/bench_setup.h"
#include "cli/bench_stats.h"
#include "cli/bench_traffic.h"

namespace chatd::cli::bench {

struct StepPlan {
  double rate = 0;  // messages/s for all shards together; 0 = closed loop
  int64_t t_start = 0, t_measure = 0, t_end = 0;
};

struct Control {
  std::mutex mu;
  std::vector<StepPlan> steps;  // guarded by mu
  std::atomic<int> published{0};
  std::atomic<bool> stop{false};
  int total_senders = 0;
};

struct LiveCounters {
  std::atomic<uint64_t> sent{0}, acked{0}, errors{0}, arrivals{0}, expected{0}, delivered{0};
  std::atomic<uint64_t> ready{0}, failed{0};
  std::atomic<bool> connected{false};
};

// Per-step numbers one shard collected.
struct ShardStep {
  uint64_t sent = 0, acked = 0, errors = 0, expected = 0, delivered = 0, duplicates = 0, late = 0;
  uint64_t arrivals = 0, acks_in_window = 0, sent_in_window = 0;
  LatencyHistogram delivery, ack;
};

class Shard final : public EngineHandler {
 public:
  // `rooms` are indexes into setup.rooms; `senders_per_room` is the same in every room.
  Shard(const EngineOptions& eo, const Setup& setup, std::vector<int> rooms, const TrafficConfig& cfg,
        Control* control);
  void Run();

  LiveCounters live;
  const std::vector<ShardStep>& steps() const { return steps_; }
  const EngineCounters& engine_counters() const { return engine_.counters(); }
  const std::map<std::string, uint64_t>& closes() const { return closes_; }
  const std::map<std::string, uint64_t>& errors() const { return errors_; }
  size_t connections() const { return engine_.total(); }

  void OnReady(Conn* c, int64_t now_ns) override;
  void OnEvent(Conn* c, const ScannedEvent& ev, int64_t now_ns) override;
  void OnClosed(Conn* c, std::string_view why) override;

 private:
  struct Sent {
    int64_t t_ns = 0;  // intended (open loop) or actual (closed loop) send time
    int32_t step = -1;
    bool done = false;
  };
  struct Sender {
    Conn* conn = nullptr;
    uint32_t gid = 0;  // room * senders_per_room + k, global
    int room = 0;      // global room index
    std::string chat;  // chat id, decimal
    std::vector<Sent> sent;
    int outstanding = 0;
  };
  struct Receiver {
    Conn* conn = nullptr;
    int room = 0;
    std::vector<SeqTracker> trackers;  // one per sender of the room
  };

  void Connect();
  void Loop();
  void BeginStep(int k);
  void SendOne(Sender& s, int64_t intended);
  void OnAck(Sender& s, const ScannedEvent& ev, int64_t now, bool ok);
  void OnDelivery(const ScannedEvent& ev, int64_t now, Receiver* r);
  void Publish();

  const Setup& setup_;
  const TrafficConfig& cfg_;
  Control* control_;
  Engine engine_;
  int senders_per_room_ = 1;
  std::vector<int> rooms_;
  std::vector<int> receivers_in_room_;  // by global room index (0 outside the shard)
  std::vector<Sender> senders_;
  std::vector<Receiver> receivers_;
  std::vector<StepPlan> plans_;
  std::vector<ShardStep> steps_;
  std::map<std::string, uint64_t> closes_, errors_;
  std::string buf_;
  int cur_ = -1;
  uint64_t step_sent_ = 0;  // messages sent in the current step (open loop index)
  double shard_rate_ = 0;
  bool loop_started_ = false;  // closed loop: initial window sent
  uint64_t sent_ = 0, acked_ = 0, errors_n_ = 0, arrivals_ = 0, expected_ = 0, delivered_ = 0;
};

}  // namespace chatd::cli::bench
