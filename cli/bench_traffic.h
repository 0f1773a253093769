// cli/bench_traffic.h — the message-traffic scenarios of `chatctl bench`: ingest, fanout
// and latency. All three are rooms with senders and receivers driven through rate steps:
//
//   ingest   N senders, each alone in its own room; closed loop (each sender keeps
//            `window` messages unacknowledged) or a fixed rate. Measures acked messages/s.
//   fanout   R rooms × M receiving members; open loop at each rate of `rates` in turn.
//            Measures deliveries/s, latency, loss, and chatd CPU per delivery.
//   latency  fanout at one low rate (1 room, 1 receiver, 1,000 msgs/s by default).
//
// Open loop: message i of a step is due at start + i / rate whatever happened before, and
// its content carries that intended time, so latency counts every delay from the moment
// the message should have left, including the generator's own (no coordinated omission).
// Each step is warmup, then a measured window, then a drain (sending stops until every
// sent message is acknowledged and delivered, or `drain_s` passes). Deliveries count
// toward a step by the message they carry; "deliveries/s" is what arrived inside the
// window. Stepping stops after the first step the relay could not sustain (less than 95%
// of the offered deliveries arrived in the window, or it took more than a second to drain).
//
// Connections are split across `threads` generator threads by room; each thread runs its
// own Engine and never touches another's state. RunTraffic is called from the main thread,
// which samples the server's CPU at the window edges and prints progress.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"
#include "cli/bench_engine.h"
#include "cli/bench_proc.h"
#include "cli/bench_setup.h"
#include "cli/bench_stats.h"

namespace chatd::cli::bench {

struct TrafficConfig {
  std::string scenario = "fanout";
  std::vector<double> rates;  // messages/s offered per step, all rooms together; 0 = closed loop
  int window = 1;             // closed loop: unacknowledged messages per sender
  double warmup_s = 1, duration_s = 5, drain_s = 10;
  size_t size = 100;  // content bytes
  int threads = 1;
  int sources = 4;  // 127.0.0.1 .. 127.0.0.N
  int max_connecting = 256;
  double connect_timeout_s = 300;
  bool all_steps = false;  // keep stepping past saturation
  bool progress = false;   // a one-line display on stderr
};

struct StepResult {
  double rate = 0;                           // offered messages/s (0: closed loop)
  double seconds = 0;                        // measured window
  uint64_t sent = 0, acked = 0, errors = 0;  // messages of this step
  uint64_t expected = 0, delivered = 0;      // deliveries owed and unique ones received
  uint64_t duplicates = 0, late = 0;
  // Owed deliveries not received when the drain ended. With drain_timed_out and no
  // connection closed by the server, they were still queued (late, not lost).
  uint64_t undelivered = 0;
  bool drain_timed_out = false;
  uint64_t arrivals = 0;  // deliveries received inside the window
  uint64_t acks_in_window = 0;
  uint64_t sent_in_window = 0;  // messages due inside the window
  LatencyHistogram delivery;    // intended send → received
  LatencyHistogram ack;         // intended send → message_sent
  double server_cpu_s = 0;      // chatd CPU seconds inside the window
  double gen_cpu_s = 0;         // generator CPU seconds inside the window
  double other_cpu_s = 0;       // CPU seconds other processes used inside the window
  std::map<std::string, double> server_thread_cpu_s;  // chatd's, by thread name, inside the window
  long server_rss_kb = 0;       // at the window's end
  double drain_s = 0;
  bool sustained = true;
};

struct TrafficResult {
  int connections = 0, ready = 0;
  double connect_s = 0;
  int deliveries_per_message = 0;
  std::vector<StepResult> steps;
  EngineCounters engine;                   // summed over threads
  std::map<std::string, uint64_t> closes;  // reason → count
  std::map<std::string, uint64_t> errors;  // error code → count
  long server_rss_before_kb = 0;
};

// The CPU clocks read at a measured window's edges: the server's (not ok without a pid),
// this generator's, and the busy time of the whole machine.
struct CpuMark {
  ProcSample server;
  double gen_s = 0, busy_s = 0;
};
CpuMark MarkCpu(int pid);
// Sets sr's server, generator and other processes' CPU seconds in the window [a, b] and
// the server's RSS at b.
void SetWindowCpu(const CpuMark& a, const CpuMark& b, StepResult* sr);
// The rule for "sustained": at least 95% of the offered rate arrived in the window, and the
// backlog drained within a second.
bool Sustained(double offered_per_s, double arrived_per_s, double drain_s);

Result<TrafficResult> RunTraffic(const Target& target, const Setup& setup, const TrafficConfig& cfg);

// Parses "1000,2000,5000" or "1000:8000:x2" (from 1000 to 8000, doubling) or
// "1000:5000:+1000" (adding). Empty on a malformed list.
std::vector<double> ParseRates(const std::string& spec);

}  // namespace chatd::cli::bench
