// The traffic scenarios' main thread: shards, the step schedule, CPU samples, progress.
// See bench_traffic.h.
#include "cli/bench_traffic.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <sstream>
#include <thread>

#include "cli/bench_proc.h"
#include "cli/bench_report.h"
#include "cli/bench_shard.h"

namespace chatd::cli::bench {

namespace {

struct Totals {
  uint64_t sent = 0, acked = 0, errors = 0, arrivals = 0, expected = 0, delivered = 0, ready = 0, failed = 0;
};

Totals Sum(const std::vector<std::unique_ptr<Shard>>& shards) {
  Totals t;
  for (const auto& s : shards) {
    t.sent += s->live.sent.load(std::memory_order_relaxed);
    t.acked += s->live.acked.load(std::memory_order_relaxed);
    t.errors += s->live.errors.load(std::memory_order_relaxed);
    t.arrivals += s->live.arrivals.load(std::memory_order_relaxed);
    t.expected += s->live.expected.load(std::memory_order_relaxed);
    t.delivered += s->live.delivered.load(std::memory_order_relaxed);
    t.ready += s->live.ready.load(std::memory_order_relaxed);
    t.failed += s->live.failed.load(std::memory_order_relaxed);
  }
  return t;
}

void SleepUntilNs(int64_t t) {
  int64_t now = MonoNs();
  if (t > now) std::this_thread::sleep_for(std::chrono::nanoseconds(t - now));
}

// Sleeps until `until`, printing a progress line every second when asked.
class Ticker {
 public:
  Ticker(const std::vector<std::unique_ptr<Shard>>& shards, int pid, bool on) : shards_(shards), pid_(pid), on_(on) {
    last_ = Sum(shards);
    last_t_ = MonoNs();
    last_cpu_ = SampleProc(pid).cpu_s;
    last_gen_ = SelfCpuSeconds();
  }
  void SleepUntil(int64_t until, const std::string& label) {
    while (MonoNs() < until) {
      SleepUntilNs(std::min(until, MonoNs() + 1'000'000'000));
      if (on_ && MonoNs() - last_t_ >= 900'000'000) Print(label);
    }
  }
  void Print(const std::string& label) {
    Totals t = Sum(shards_);
    int64_t now = MonoNs();
    double dt = static_cast<double>(now - last_t_) / 1e9;
    ProcSample p = SampleProc(pid_);
    double gen = SelfCpuSeconds();
    std::string line = label + " | sent " + Si((t.sent - last_.sent) / dt) + "/s acked " +
                       Si((t.acked - last_.acked) / dt) + "/s deliv " + Si((t.arrivals - last_.arrivals) / dt) + "/s";
    if (p.ok) {
      line +=
          " | server " + Fixed(100 * (p.cpu_s - last_cpu_) / dt, 0) + "% cpu " + Fixed(p.rss_kb / 1024.0, 1) + " MB";
    }
    line += " | gen " + Fixed(100 * (gen - last_gen_) / dt, 0) + "% cpu";
    ProgressLine(line);
    last_ = t;
    last_t_ = now;
    last_cpu_ = p.cpu_s;
    last_gen_ = gen;
  }

 private:
  const std::vector<std::unique_ptr<Shard>>& shards_;
  int pid_;
  bool on_;
  Totals last_;
  int64_t last_t_;
  double last_cpu_, last_gen_;
};

}  // namespace

CpuMark MarkCpu(int pid) {
  CpuMark m;
  m.server = SampleProc(pid);
  m.gen_s = SelfCpuSeconds();
  m.busy_s = MachineBusySeconds();
  return m;
}

void SetWindowCpu(const CpuMark& a, const CpuMark& b, StepResult* sr) {
  sr->server_cpu_s = a.server.ok && b.server.ok ? b.server.cpu_s - a.server.cpu_s : 0;
  sr->server_thread_cpu_s.clear();
  if (a.server.ok && b.server.ok) {
    for (const auto& [name, cpu] : b.server.thread_cpu_s) {
      auto before = a.server.thread_cpu_s.find(name);
      const double used = cpu - (before == a.server.thread_cpu_s.end() ? 0 : before->second);
      if (used > 0) sr->server_thread_cpu_s[name] = used;  // < 0: one of the name exited
    }
  }
  sr->server_rss_kb = b.server.rss_kb;
  sr->gen_cpu_s = b.gen_s - a.gen_s;
  sr->other_cpu_s = std::max(0.0, (b.busy_s - a.busy_s) - sr->server_cpu_s - sr->gen_cpu_s);
}

bool Sustained(double offered_per_s, double arrived_per_s, double drain_s) {
  return arrived_per_s >= 0.95 * offered_per_s && drain_s <= 1.0;
}

std::vector<double> ParseRates(const std::string& spec) {
  std::vector<double> out;
  if (spec.find(':') != std::string::npos) {
    double from = 0, to = 0, by = 0;
    char op = 0;
    if (sscanf(spec.c_str(), "%lf:%lf:%c%lf", &from, &to, &op, &by) != 4) return {};
    if (from <= 0 || to < from || (op != 'x' && op != '+') || (op == 'x' && by <= 1) || (op == '+' && by <= 0))
      return {};
    for (double r = from; r <= to * 1.0000001 && out.size() < 100; r = op == 'x' ? r * by : r + by) out.push_back(r);
    return out;
  }
  std::stringstream ss(spec);
  std::string part;
  while (std::getline(ss, part, ',')) {
    char* end = nullptr;
    double r = strtod(part.c_str(), &end);
    if (part.empty() || *end != '\0' || r < 0 || !std::isfinite(r)) return {};
    out.push_back(r);
  }
  return out;
}

Result<TrafficResult> RunTraffic(const Target& target, const Setup& setup, const TrafficConfig& cfg) {
  TrafficResult res;
  if (setup.rooms.empty()) return BadRequest("no rooms to run");
  if (cfg.rates.empty()) return BadRequest("no rates to run");
  EngineOptions eo;
  std::string host;
  int port = 0;
  if (!ParseHostPort(target.gateway, &host, &port)) return BadRequest("bad gateway address " + target.gateway);
  eo.gateway.sin_family = AF_INET;
  eo.gateway.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &eo.gateway.sin_addr) != 1)
    return BadRequest("the gateway must be an IPv4 address");
  eo.host = target.gateway;
  eo.sources = LoopbackSources(cfg.sources);
  if (!target.receive_gateway.empty()) {
    if (!ParseHostPort(target.receive_gateway, &host, &port))
      return BadRequest("bad address " + target.receive_gateway);
    eo.alt_gateway.sin_family = AF_INET;
    eo.alt_gateway.sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, host.c_str(), &eo.alt_gateway.sin_addr) != 1)
      return BadRequest("the receivers' gateway must be an IPv4 address");
    eo.alt_host = target.receive_gateway;
    eo.alt_role = 1;  // Shard: receivers
  }
  const int nthreads = std::max(1, std::min(cfg.threads, static_cast<int>(setup.rooms.size())));
  eo.max_connecting = std::max(1, cfg.max_connecting / nthreads);

  Control control;
  std::vector<std::vector<int>> assign(static_cast<size_t>(nthreads));
  for (size_t r = 0; r < setup.rooms.size(); ++r) {
    assign[r % static_cast<size_t>(nthreads)].push_back(static_cast<int>(r));
    control.total_senders += static_cast<int>(setup.rooms[r].senders.size());
    res.connections += static_cast<int>(setup.rooms[r].senders.size() + setup.rooms[r].receivers.size());
  }
  res.deliveries_per_message = static_cast<int>(setup.rooms[0].receivers.size() + setup.rooms[0].senders.size()) - 1;
  std::vector<std::unique_ptr<Shard>> shards;
  for (int i = 0; i < nthreads; ++i) {
    shards.push_back(std::make_unique<Shard>(eo, setup, assign[static_cast<size_t>(i)], cfg, &control));
  }
  ProcSample before = SampleProc(target.pid);
  res.server_rss_before_kb = before.rss_kb;
  int64_t t0 = MonoNs();
  std::vector<std::thread> threads;
  for (auto& s : shards) threads.emplace_back([p = s.get()] { p->Run(); });

  // Connect.
  bool timed_out = false;
  for (;;) {
    bool all = true;
    for (auto& s : shards) all = all && s->live.connected.load(std::memory_order_acquire);
    Totals t = Sum(shards);
    if (cfg.progress) {
      ProgressLine("connecting: " + std::to_string(t.ready) + "/" + std::to_string(res.connections) + " ready" +
                   (t.failed ? ", " + std::to_string(t.failed) + " failed" : ""));
    }
    if (all) break;
    if (MonoNs() - t0 > static_cast<int64_t>(cfg.connect_timeout_s * 1e9)) {
      timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  res.connect_s = static_cast<double>(MonoNs() - t0) / 1e9;
  res.ready = static_cast<int>(Sum(shards).ready);
  auto finish = [&] {
    control.stop = true;
    for (auto& th : threads) th.join();
    for (auto& s : shards) {
      for (const auto& [k, v] : s->closes()) res.closes[k] += v;
      for (const auto& [k, v] : s->errors()) res.errors[k] += v;
      const EngineCounters& c = s->engine_counters();
      res.engine.bytes_in += c.bytes_in;
      res.engine.bytes_out += c.bytes_out;
      res.engine.frames_in += c.frames_in;
      res.engine.reads += c.reads;
      res.engine.writes += c.writes;
      res.engine.events += c.events;
      res.engine.connect_failures += c.connect_failures;
      res.engine.closed_by_server += c.closed_by_server;
      res.engine.stuck += c.stuck;
      res.engine.pings += c.pings;
    }
  };
  if (timed_out || res.ready < res.connections) {
    finish();
    std::string why = res.closes.empty() ? std::string("timed out") : res.closes.begin()->first;
    return Status(Code::kUnavailable, std::to_string(res.connections - res.ready) + " of " +
                                          std::to_string(res.connections) + " connections failed (" + why + ")");
  }

  Ticker ticker(shards, target.pid, cfg.progress);
  for (size_t k = 0; k < cfg.rates.size(); ++k) {
    StepPlan plan;
    plan.rate = cfg.rates[k];
    plan.t_start = MonoNs() + 50'000'000;
    plan.t_measure = plan.t_start + static_cast<int64_t>(cfg.warmup_s * 1e9);
    plan.t_end = plan.t_measure + static_cast<int64_t>(cfg.duration_s * 1e9);
    {
      std::lock_guard<std::mutex> lock(control.mu);
      control.steps.push_back(plan);
    }
    control.published.store(static_cast<int>(k) + 1, std::memory_order_release);
    std::string label = cfg.scenario + " step " + std::to_string(k + 1) + "/" + std::to_string(cfg.rates.size()) +
                        (plan.rate > 0 ? " @ " + Si(plan.rate) + " msg/s" : " closed loop");
    ticker.SleepUntil(plan.t_measure, label + " (warmup)");
    CpuMark c0 = MarkCpu(target.pid);
    Totals a = Sum(shards);
    ticker.SleepUntil(plan.t_end, label);
    CpuMark c1 = MarkCpu(target.pid);
    Totals b = Sum(shards);
    StepResult sr;
    sr.rate = plan.rate;
    sr.seconds = cfg.duration_s;
    SetWindowCpu(c0, c1, &sr);
    // Drain: stop sending; wait for every ack and delivery owed.
    int64_t d0 = MonoNs();
    for (;;) {
      Totals t = Sum(shards);
      if (t.acked + t.errors >= t.sent && t.delivered >= t.expected) break;
      if (MonoNs() - d0 > static_cast<int64_t>(cfg.drain_s * 1e9)) {
        sr.drain_timed_out = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    sr.drain_s = static_cast<double>(MonoNs() - d0) / 1e9;
    if (plan.rate > 0) {
      double offered = plan.rate * std::max(1, res.deliveries_per_message);
      double got = static_cast<double>(res.deliveries_per_message > 0 ? b.arrivals - a.arrivals : b.acked - a.acked);
      sr.sustained = Sustained(offered, got / cfg.duration_s, sr.drain_s);
    }
    res.steps.push_back(std::move(sr));
    if (cfg.progress) ProgressLine("");
    if (!res.steps.back().sustained && !cfg.all_steps) break;
  }
  finish();
  for (size_t k = 0; k < res.steps.size(); ++k) {
    StepResult& sr = res.steps[k];
    for (auto& s : shards) {
      if (k >= s->steps().size()) continue;
      const ShardStep& st = s->steps()[k];
      sr.sent += st.sent;
      sr.acked += st.acked;
      sr.errors += st.errors;
      sr.expected += st.expected;
      sr.delivered += st.delivered;
      sr.duplicates += st.duplicates;
      sr.late += st.late;
      sr.arrivals += st.arrivals;
      sr.acks_in_window += st.acks_in_window;
      sr.sent_in_window += st.sent_in_window;
      sr.delivery.Merge(st.delivery);
      sr.ack.Merge(st.ack);
    }
    sr.undelivered = sr.expected > sr.delivered ? sr.expected - sr.delivered : 0;
  }
  return res;
}

}  // namespace chatd::cli::bench
