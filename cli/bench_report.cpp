// Progress line, tables and JSON for `chatctl bench`. See bench_report.h.
#include "cli/bench_report.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <utility>
#include <vector>

namespace chatd::cli::bench {

void Kv(JsonOut& w, const char* k, double v) {
  w.Key(k);
  w.Double(v);
}
void Kv(JsonOut& w, const char* k, uint64_t v) {
  w.Key(k);
  w.Uint64(v);
}
void Kv(JsonOut& w, const char* k, int64_t v) {
  w.Key(k);
  w.Int64(v);
}
void Kv(JsonOut& w, const char* k, const std::string& v) {
  w.Key(k);
  w.String(v.c_str());
}
void Kv(JsonOut& w, const char* k, bool v) {
  w.Key(k);
  w.Bool(v);
}

void WriteHeader(JsonOut& w, const Header& h) {
  Kv(w, "scenario", h.scenario);
  Kv(w, "shape", h.shape);
  w.Key("target");
  w.StartObject();
  Kv(w, "gateway", h.target.gateway);
  Kv(w, "api", h.target.api);
  Kv(w, "pid", static_cast<int64_t>(h.target.pid));
  Kv(w, "sink", h.target.sink);
  if (!h.target.receive_gateway.empty()) {
    Kv(w, "receive_gateway", h.target.receive_gateway);
    Kv(w, "receive_pid", static_cast<int64_t>(h.target.receive_pid));
  }
  w.EndObject();
  w.Key("machine");
  w.StartObject();
  Kv(w, "nproc", static_cast<int64_t>(h.machine.nproc));
  Kv(w, "cpu_model", h.machine.cpu_model);
  Kv(w, "kernel", h.machine.kernel);
  Kv(w, "open_files_limit", static_cast<int64_t>(h.machine.open_files_limit));
  Kv(w, "ephemeral_ports", h.machine.ephemeral_ports);
  w.EndObject();
  Kv(w, "sources", static_cast<int64_t>(h.sources));
  Kv(w, "message_bytes", static_cast<uint64_t>(h.size));
  Kv(w, "threads", static_cast<int64_t>(h.threads));
}

void WriteHist(JsonOut& w, const char* name, const LatencyHistogram& hist) {
  w.Key(name);
  w.StartObject();
  Kv(w, "count", hist.count());
  Kv(w, "p50_us", hist.Percentile(0.50) / 1e3);
  Kv(w, "p90_us", hist.Percentile(0.90) / 1e3);
  Kv(w, "p99_us", hist.Percentile(0.99) / 1e3);
  Kv(w, "p999_us", hist.Percentile(0.999) / 1e3);
  Kv(w, "max_us", hist.max() / 1e3);
  Kv(w, "mean_us", hist.mean() / 1e3);
  w.EndObject();
}

void PrintHeaderText(const Header& h) {
  printf("chatctl bench %s: %s\n", h.scenario.c_str(), h.shape.c_str());
  printf("  target   %s%s", h.target.sink ? "sink " : "gateway ", h.target.gateway.c_str());
  if (h.target.pid) printf(" (pid %d)", h.target.pid);
  if (!h.target.receive_gateway.empty()) printf(", receivers on gateway %s", h.target.receive_gateway.c_str());
  printf("\n  machine  %d CPUs, %s, %s\n", h.machine.nproc, h.machine.cpu_model.c_str(), h.machine.kernel.c_str());
  printf("  client   %d thread(s), %d source address(es)", h.threads, h.sources);
  if (h.size) printf(", %zu-byte messages", h.size);
  printf("\n");
}

std::string Si(double v) {
  char buf[32];
  if (v >= 1e6)
    snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  else if (v >= 1e4)
    snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  else
    snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

std::string Fixed(double v, int decimals) {
  char buf[32];
  snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string Dur(int64_t ns) {
  char buf[32];
  if (ns < 1'000'000)
    snprintf(buf, sizeof buf, "%.0fus", static_cast<double>(ns) / 1e3);
  else if (ns < 1'000'000'000)
    snprintf(buf, sizeof buf, "%.2fms", static_cast<double>(ns) / 1e6);
  else
    snprintf(buf, sizeof buf, "%.2fs", static_cast<double>(ns) / 1e9);
  return buf;
}

bool ProgressWanted() { return isatty(STDERR_FILENO) == 1; }

void ProgressLine(const std::string& line) {
  if (!ProgressWanted()) return;
  fprintf(stderr, "\r\033[K%s", line.c_str());
  fflush(stderr);
}

namespace {

// Server CPU microseconds per delivery (fan-out shapes) or per acknowledged message.
double UsPer(const StepResult& s, bool fan, double cpu_s) {
  const uint64_t n = fan ? s.arrivals : s.acks_in_window;
  return n ? cpu_s * 1e6 / static_cast<double>(n) : 0;
}

// chatd's threads by CPU used in the step, the busiest first.
std::vector<std::pair<std::string, double>> ByCpu(const StepResult& s) {
  std::vector<std::pair<std::string, double>> v(s.server_thread_cpu_s.begin(), s.server_thread_cpu_s.end());
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  return v;
}

}  // namespace

void PrintTraffic(const Header& h, const TrafficConfig& cfg, const TrafficResult& r, bool json) {
  const bool fan = r.deliveries_per_message > 0;
  if (json) {
    rapidjson::StringBuffer buf;
    JsonOut w(buf);
    w.StartObject();
    WriteHeader(w, h);
    Kv(w, "connections", static_cast<int64_t>(r.connections));
    Kv(w, "connect_s", r.connect_s);
    Kv(w, "deliveries_per_message", static_cast<int64_t>(r.deliveries_per_message));
    Kv(w, "window", static_cast<int64_t>(cfg.window));
    Kv(w, "warmup_s", cfg.warmup_s);
    Kv(w, "server_rss_before_kb", static_cast<int64_t>(r.server_rss_before_kb));
    w.Key("steps");
    w.StartArray();
    double best = 0;
    for (const StepResult& s : r.steps) {
      double deliv = static_cast<double>(s.arrivals) / s.seconds;
      double acks = static_cast<double>(s.acks_in_window) / s.seconds;
      if (s.sustained) best = std::max(best, fan ? deliv : acks);
      w.StartObject();
      Kv(w, "offered_msgs_per_s", s.rate);
      Kv(w, "seconds", s.seconds);
      Kv(w, "sent_per_s", static_cast<double>(s.sent_in_window) / s.seconds);
      Kv(w, "acked_per_s", acks);
      Kv(w, "deliveries_per_s", deliv);
      Kv(w, "sent", s.sent);
      Kv(w, "acked", s.acked);
      Kv(w, "errors", s.errors);
      Kv(w, "deliveries_expected", s.expected);
      Kv(w, "deliveries_unique", s.delivered);
      Kv(w, "undelivered", s.undelivered);
      Kv(w, "drain_timed_out", s.drain_timed_out);
      Kv(w, "duplicates", s.duplicates);
      Kv(w, "reordered", s.late);
      WriteHist(w, "delivery_latency", s.delivery);
      WriteHist(w, "ack_latency", s.ack);
      Kv(w, "server_cpu_s", s.server_cpu_s);
      Kv(w, "server_cpu_pct", 100 * s.server_cpu_s / s.seconds);
      const char* per_key = fan ? "server_us_per_delivery" : "server_us_per_message";
      Kv(w, per_key, UsPer(s, fan, s.server_cpu_s));
      w.Key("server_threads");  // where chatd's CPU went: {name: {cpu_s, us per unit}}
      w.StartObject();
      for (const auto& [name, cpu] : ByCpu(s)) {
        w.Key(name.c_str());
        w.StartObject();
        Kv(w, "cpu_s", cpu);
        Kv(w, fan ? "us_per_delivery" : "us_per_message", UsPer(s, fan, cpu));
        w.EndObject();
      }
      w.EndObject();
      Kv(w, "server_rss_kb", static_cast<int64_t>(s.server_rss_kb));
      Kv(w, "generator_cpu_pct", 100 * s.gen_cpu_s / s.seconds);
      Kv(w, "other_processes_cpu_pct", 100 * s.other_cpu_s / s.seconds);
      Kv(w, "drain_s", s.drain_s);
      Kv(w, "sustained", s.sustained);
      w.EndObject();
    }
    w.EndArray();
    Kv(w, fan ? "best_sustained_deliveries_per_s" : "best_sustained_acked_per_s", best);
    w.Key("errors");
    w.StartObject();
    for (const auto& [k, v] : r.errors) Kv(w, k.c_str(), v);
    w.EndObject();
    w.Key("closes");
    w.StartObject();
    for (const auto& [k, v] : r.closes) Kv(w, k.c_str(), v);
    w.EndObject();
    w.Key("client");
    w.StartObject();
    Kv(w, "bytes_in", r.engine.bytes_in);
    Kv(w, "bytes_out", r.engine.bytes_out);
    Kv(w, "reads", r.engine.reads);
    Kv(w, "writes", r.engine.writes);
    Kv(w, "events", r.engine.events);
    Kv(w, "stuck", r.engine.stuck);
    w.EndObject();
    w.EndObject();
    printf("%s\n", buf.GetString());
    return;
  }
  PrintHeaderText(h);
  printf("  %d connections ready in %.1fs; server RSS before %.1f MB\n\n", r.connections, r.connect_s,
         r.server_rss_before_kb / 1024.0);
  printf("%-9s %9s %9s %9s %7s %8s %8s %8s %6s %4s %4s %6s %8s %5s %6s %7s %s\n", "offered", "sent/s", "acked/s",
         "deliv/s", fan ? "p50" : "ack p50", "p99", "p99.9", "max", "undeliv", "dup", "ooo", "srv%",
         fan ? "us/deliv" : "us/msg", "gen%", "other%", "rss MB", "ok");
  double best = 0;
  for (const StepResult& s : r.steps) {
    const LatencyHistogram& hist = fan ? s.delivery : s.ack;
    double deliv = static_cast<double>(s.arrivals) / s.seconds;
    double acks = static_cast<double>(s.acks_in_window) / s.seconds;
    double per = UsPer(s, fan, s.server_cpu_s);
    if (s.sustained) best = std::max(best, fan ? deliv : acks);
    std::string offered = s.rate > 0 ? Si(s.rate) : "closed";
    printf("%-9s %9s %9s %9s %7s %8s %8s %8s %6llu %4llu %4llu %6s %8s %5s %6s %7s %s\n", offered.c_str(),
           Si(static_cast<double>(s.sent_in_window) / s.seconds).c_str(), Si(acks).c_str(),
           fan ? Si(deliv).c_str() : "-", Dur(hist.Percentile(0.5)).c_str(), Dur(hist.Percentile(0.99)).c_str(),
           Dur(hist.Percentile(0.999)).c_str(), Dur(hist.max()).c_str(), static_cast<unsigned long long>(s.undelivered),
           static_cast<unsigned long long>(s.duplicates), static_cast<unsigned long long>(s.late),
           Fixed(100 * s.server_cpu_s / s.seconds, 0).c_str(), Fixed(per, 2).c_str(),
           Fixed(100 * s.gen_cpu_s / s.seconds, 0).c_str(), Fixed(100 * s.other_cpu_s / s.seconds, 0).c_str(),
           Fixed(s.server_rss_kb / 1024.0, 1).c_str(), s.sustained ? "yes" : "NO");
  }
  printf("\nbest sustained: %s %s/s\n", Si(best).c_str(), fan ? "deliveries" : "acknowledged messages");
  if (!r.steps.empty() && !r.steps.back().server_thread_cpu_s.empty()) {
    const StepResult& s = r.steps.back();
    printf("server CPU by thread (last step, %s):", fan ? "us/delivery" : "us/msg");
    for (const auto& [name, cpu] : ByCpu(s)) {
      if (UsPer(s, fan, cpu) >= 0.005) printf(" %s %s", name.c_str(), Fixed(UsPer(s, fan, cpu), 2).c_str());
    }
    printf("\n");
  }
  if (fan && !r.steps.empty()) {
    const StepResult& s = r.steps.back();
    printf("ack latency (last step): p50 %s  p99 %s  p99.9 %s\n", Dur(s.ack.Percentile(0.5)).c_str(),
           Dur(s.ack.Percentile(0.99)).c_str(), Dur(s.ack.Percentile(0.999)).c_str());
  }
  for (const auto& [k, v] : r.errors) printf("errors: %s x%llu\n", k.c_str(), static_cast<unsigned long long>(v));
  for (const auto& [k, v] : r.closes) printf("closed: %s x%llu\n", k.c_str(), static_cast<unsigned long long>(v));
}

void PrintIdle(const Header& h, const IdleResult& r, bool json) {
  double per = r.ready ? static_cast<double>(r.rss_after_kb - r.rss_before_kb) * 1024.0 / r.ready : 0;
  if (json) {
    rapidjson::StringBuffer buf;
    JsonOut w(buf);
    w.StartObject();
    WriteHeader(w, h);
    Kv(w, "connections", static_cast<int64_t>(r.connections));
    Kv(w, "ready", static_cast<int64_t>(r.ready));
    Kv(w, "connect_s", r.connect_s);
    Kv(w, "server_rss_before_kb", static_cast<int64_t>(r.rss_before_kb));
    Kv(w, "server_rss_after_kb", static_cast<int64_t>(r.rss_after_kb));
    Kv(w, "server_rss_end_kb", static_cast<int64_t>(r.rss_end_kb));
    Kv(w, "server_hwm_kb", static_cast<int64_t>(r.hwm_kb));
    Kv(w, "server_bytes_per_connection", per);
    Kv(w, "hold_s", r.hold_s);
    Kv(w, "server_cpu_pct", r.hold_s > 0 ? 100 * r.server_cpu_s / r.hold_s : 0);
    Kv(w, "generator_cpu_pct", r.hold_s > 0 ? 100 * r.gen_cpu_s / r.hold_s : 0);
    Kv(w, "other_processes_cpu_pct", r.hold_s > 0 ? 100 * r.other_cpu_s / r.hold_s : 0);
    Kv(w, "server_threads", static_cast<int64_t>(r.server_threads));
    Kv(w, "pings_answered", r.pings);
    Kv(w, "closed_by_server", r.closed_by_server);
    Kv(w, "first_close", r.first_close);
    w.Key("kernel");
    w.StartObject();
    Kv(w, "slab_before_kb", static_cast<int64_t>(r.kernel_before.slab_kb));
    Kv(w, "slab_after_kb", static_cast<int64_t>(r.kernel_after.slab_kb));
    Kv(w, "tcp_buffers_before_kb", static_cast<int64_t>(r.kernel_before.tcp_buffers_kb));
    Kv(w, "tcp_buffers_after_kb", static_cast<int64_t>(r.kernel_after.tcp_buffers_kb));
    Kv(w, "tcp_sockets_before", static_cast<int64_t>(r.kernel_before.tcp_sockets));
    Kv(w, "tcp_sockets_after", static_cast<int64_t>(r.kernel_after.tcp_sockets));
    Kv(w, "slab_bytes_per_connection_both_ends",
       r.ready ? (r.kernel_after.slab_kb - r.kernel_before.slab_kb) * 1024.0 / r.ready : 0.0);
    w.EndObject();
    w.EndObject();
    printf("%s\n", buf.GetString());
    return;
  }
  PrintHeaderText(h);
  printf("\n  %d/%d connections authenticated in %.1fs\n", r.ready, r.connections, r.connect_s);
  printf("  server RSS   %.1f MB before, %.1f MB after, %.1f MB at the end (peak %.1f MB)\n", r.rss_before_kb / 1024.0,
         r.rss_after_kb / 1024.0, r.rss_end_kb / 1024.0, r.hwm_kb / 1024.0);
  printf("  per connection  %.0f bytes (%.2f KB)\n", per, per / 1024.0);
  printf("  kernel slab     %+.1f MB (%.0f bytes per connection, both ends on this machine); TCP buffers %+ld kB\n",
         (r.kernel_after.slab_kb - r.kernel_before.slab_kb) / 1024.0,
         r.ready ? (r.kernel_after.slab_kb - r.kernel_before.slab_kb) * 1024.0 / r.ready : 0.0,
         r.kernel_after.tcp_buffers_kb - r.kernel_before.tcp_buffers_kb);
  double hold = r.hold_s > 0 ? r.hold_s : 1;
  printf("  held %.0fs: server CPU %.2f%%, generator CPU %.2f%%, other processes %.0f%%, %llu pings answered\n",
         r.hold_s, 100 * r.server_cpu_s / hold, 100 * r.gen_cpu_s / hold, 100 * r.other_cpu_s / hold,
         static_cast<unsigned long long>(r.pings));
  if (r.closed_by_server) {
    printf("  %llu connections closed by the server (%s)\n", static_cast<unsigned long long>(r.closed_by_server),
           r.first_close.c_str());
  }
}

}  // namespace chatd::cli::bench
