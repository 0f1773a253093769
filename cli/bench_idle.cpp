// The idle scenario. See bench_idle.h.
#include "cli/bench_idle.h"

#include <arpa/inet.h>

#include <algorithm>
#include <string>

#include "cli/bench_engine.h"
#include "cli/bench_proc.h"

namespace chatd::cli::bench {

namespace {

class IdleHandler final : public EngineHandler {
 public:
  void OnReady(Conn*, int64_t) override {}
  void OnEvent(Conn*, const ScannedEvent&, int64_t) override {}
  void OnClosed(Conn*, std::string_view why) override {
    if (first_close.empty()) first_close = std::string(why);
  }
  std::string first_close;
};

// Polls the engine until `until` (absolute ns), printing progress every second.
void PollUntil(Engine& e, int64_t until, bool progress, const std::string& label, int pid) {
  int64_t next_print = 0;
  for (;;) {
    int64_t now = MonoNs();
    if (now >= until) return;
    e.Poll(std::min(until, now + 100'000'000));
    if (progress && MonoNs() >= next_print) {
      ProcSample p = SampleProc(pid);
      ProgressLine(label + ": " + std::to_string(e.ready()) + " ready" +
                   (p.ok ? ", server RSS " + Fixed(p.rss_kb / 1024.0, 1) + " MB" : ""));
      next_print = MonoNs() + 1'000'000'000;
    }
  }
}

}  // namespace

Result<IdleResult> RunIdle(const Target& target, const Setup& setup, const IdleConfig& cfg) {
  if (setup.loose.empty()) return BadRequest("idle: no users to connect as");
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
  eo.max_connecting = cfg.max_connecting;
  IdleHandler handler;
  Engine engine(eo, &handler);

  IdleResult r;
  r.connections = cfg.connections;
  ProcSample before = SampleProc(target.pid);
  r.rss_before_kb = before.rss_kb;
  r.kernel_before = SampleKernelMemory();
  for (int i = 0; i < cfg.connections; ++i) {
    engine.Add(setup.loose[static_cast<size_t>(i) % setup.loose.size()].token, -1, 0, static_cast<uint32_t>(i));
  }
  int64_t t0 = MonoNs();
  int64_t next_print = 0;
  while (engine.ready() + engine.counters().connect_failures < engine.total()) {
    if (MonoNs() - t0 > static_cast<int64_t>(cfg.connect_timeout_s * 1e9)) break;
    engine.Poll(MonoNs() + 100'000'000);
    if (cfg.progress && MonoNs() >= next_print) {
      ProgressLine("idle: connecting " + std::to_string(engine.ready()) + "/" + std::to_string(engine.total()));
      next_print = MonoNs() + 500'000'000;
    }
  }
  r.connect_s = static_cast<double>(MonoNs() - t0) / 1e9;
  r.ready = static_cast<int>(engine.ready());
  if (r.ready < cfg.connections) {
    if (cfg.progress) ProgressLine("");
    return Status(Code::kUnavailable, std::to_string(cfg.connections - r.ready) + " of " +
                                          std::to_string(cfg.connections) + " connections failed (" +
                                          (handler.first_close.empty() ? "timed out" : handler.first_close) + ")");
  }
  PollUntil(engine, MonoNs() + static_cast<int64_t>(cfg.settle_s * 1e9), cfg.progress, "idle: settling", target.pid);
  ProcSample after = SampleProc(target.pid);
  r.kernel_after = SampleKernelMemory();
  double g0 = SelfCpuSeconds();
  double m0 = MachineBusySeconds();
  int64_t h0 = MonoNs();
  PollUntil(engine, h0 + static_cast<int64_t>(cfg.hold_s * 1e9), cfg.progress, "idle: holding", target.pid);
  ProcSample end = SampleProc(target.pid);
  r.hold_s = static_cast<double>(MonoNs() - h0) / 1e9;
  r.gen_cpu_s = SelfCpuSeconds() - g0;
  double busy = MachineBusySeconds() - m0;
  r.rss_after_kb = after.rss_kb;
  r.rss_end_kb = end.rss_kb;
  r.hwm_kb = end.hwm_kb;
  r.server_cpu_s = after.ok && end.ok ? end.cpu_s - after.cpu_s : 0;
  r.server_threads = end.threads;
  r.other_cpu_s = std::max(0.0, busy - r.server_cpu_s - r.gen_cpu_s);
  r.pings = engine.counters().pings;
  r.closed_by_server = engine.counters().closed_by_server;
  r.first_close = handler.first_close;
  if (cfg.progress) ProgressLine("");
  return r;
}

}  // namespace chatd::cli::bench
