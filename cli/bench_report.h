// cli/bench_report.h — how `chatctl bench` shows its results: a one-line progress display
// on a terminal (stderr), a table for people and JSON (`-o json`) for scripts (stdout).
// Main thread only.
#pragma once

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <string>

#include "cli/bench_proc.h"
#include "cli/bench_setup.h"
#include "cli/bench_traffic.h"

namespace chatd::cli::bench {

using JsonOut = rapidjson::Writer<rapidjson::StringBuffer>;
// One "key": value member of a JSON report.
void Kv(JsonOut& w, const char* k, double v);
void Kv(JsonOut& w, const char* k, uint64_t v);
void Kv(JsonOut& w, const char* k, int64_t v);
void Kv(JsonOut& w, const char* k, const std::string& v);
void Kv(JsonOut& w, const char* k, bool v);

// "950", "12.3k", "1.25M".
std::string Si(double v);
std::string Fixed(double v, int decimals);
// A duration in ns as "850us", "2.10ms", "1.20s".
std::string Dur(int64_t ns);

// Rewrites the progress line on stderr when stderr is a terminal; "" clears it.
void ProgressLine(const std::string& line);
bool ProgressWanted();

// What every report starts with.
struct Header {
  std::string scenario;
  std::string shape;  // "10 rooms x 100 receivers + 1 sender"
  Target target;
  MachineInfo machine;
  int sources = 0;
  size_t size = 0;
  int threads = 1;
};

// The header's fields as members of a JSON report, and as the text report's first lines.
void WriteHeader(JsonOut& w, const Header& h);
void PrintHeaderText(const Header& h);
// `name`: {count, p50_us, p90_us, p99_us, p999_us, max_us, mean_us}.
void WriteHist(JsonOut& w, const char* name, const LatencyHistogram& hist);

void PrintTraffic(const Header& h, const TrafficConfig& cfg, const TrafficResult& r, bool json);

struct IdleResult {
  int connections = 0, ready = 0;
  double connect_s = 0, hold_s = 0;
  long rss_before_kb = 0, rss_after_kb = 0, rss_end_kb = 0, hwm_kb = 0;
  double server_cpu_s = 0, gen_cpu_s = 0, other_cpu_s = 0;
  int server_threads = 0;
  uint64_t pings = 0, closed_by_server = 0;
  KernelMemory kernel_before, kernel_after;  // both ends of every connection are counted
  std::string first_close;
};

void PrintIdle(const Header& h, const IdleResult& r, bool json);

}  // namespace chatd::cli::bench
