// Tests for chatctl bench's numbers: the latency histogram's buckets and percentiles,
// the per-stream sequence tracker (loss, duplicates, reordering), rate-step parsing, and
// the server's CPU by thread read from /proc.
#include "cli/bench_stats.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "cli/bench_proc.h"
#include "cli/bench_traffic.h"

namespace chatd::cli::bench {
namespace {

TEST_CASE("histogram buckets are contiguous and keep values within 1/128", "[unit][bench]") {
  // Exact below 256.
  for (int64_t v = 0; v < 256; ++v) {
    int b = LatencyHistogram::BucketOf(v);
    CHECK(LatencyHistogram::BucketLow(b) == v);
    CHECK(LatencyHistogram::BucketHigh(b) == v);
  }
  // Every bucket starts one past the previous one's end, over the whole range.
  for (int b = 1; b < LatencyHistogram::NumBuckets(); ++b) {
    INFO("bucket " << b);
    REQUIRE(LatencyHistogram::BucketLow(b) == LatencyHistogram::BucketHigh(b - 1) + 1);
  }
  CHECK(LatencyHistogram::BucketHigh(LatencyHistogram::NumBuckets() - 1) == INT64_MAX);
  CHECK(LatencyHistogram::BucketOf(INT64_MAX) == LatencyHistogram::NumBuckets() - 1);
  // A value lands in the bucket that spans it, and the bucket is narrow.
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100000; ++i) {
    auto v = static_cast<int64_t>(rng() >> (1 + rng() % 62));
    int b = LatencyHistogram::BucketOf(v);
    REQUIRE(LatencyHistogram::BucketLow(b) <= v);
    REQUIRE(LatencyHistogram::BucketHigh(b) >= v);
    double width = static_cast<double>(LatencyHistogram::BucketHigh(b) - LatencyHistogram::BucketLow(b));
    REQUIRE(width <= static_cast<double>(v) / 128.0 + 1);
  }
  CHECK(LatencyHistogram::BucketOf(-5) == 0);
}

TEST_CASE("histogram percentiles match the exact ones within the bucket precision", "[unit][bench]") {
  LatencyHistogram h;
  std::vector<int64_t> values;
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(13.0, 1.0);  // ~0.4 ms median, in ns, long tail
  for (int i = 0; i < 200000; ++i) {
    auto v = static_cast<int64_t>(dist(rng));
    values.push_back(v);
    h.Record(v);
  }
  std::sort(values.begin(), values.end());
  CHECK(h.count() == values.size());
  CHECK(h.min() == values.front());
  CHECK(h.max() == values.back());
  for (double q : {0.0, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0}) {
    INFO("q = " << q);
    size_t rank = std::max<size_t>(1, static_cast<size_t>(std::ceil(q * static_cast<double>(values.size()))));
    int64_t exact = values[rank - 1];
    int64_t got = h.Percentile(q);
    CHECK(got >= exact);  // the bucket's highest value: never under-reports
    CHECK(static_cast<double>(got) <= static_cast<double>(exact) * (1.0 + 1.0 / 128) + 1);
  }
}

TEST_CASE("histogram of known values: ranks, mean, merge, reset", "[unit][bench]") {
  LatencyHistogram h;
  CHECK(h.Percentile(0.99) == 0);
  CHECK(h.count() == 0);
  for (int64_t v = 1; v <= 100; ++v) h.Record(v);
  CHECK(h.Percentile(0.5) == 50);
  CHECK(h.Percentile(0.99) == 99);
  CHECK(h.Percentile(0.999) == 100);
  CHECK(h.Percentile(0) == 1);
  CHECK(h.mean() == Approx(50.5));

  LatencyHistogram other;
  for (int i = 0; i < 100; ++i) other.Record(1'000'000'000);  // 100 values of one second
  h.Merge(other);
  CHECK(h.count() == 200);
  CHECK(h.max() == 1'000'000'000);
  CHECK(h.Percentile(0.5) == 100);
  // Clamped to the largest value recorded, not the bucket's end.
  CHECK(h.Percentile(0.75) == 1'000'000'000);
  h.Record(-3);  // a clock that went backwards counts as zero
  CHECK(h.min() == 0);
  h.Reset();
  CHECK(h.count() == 0);
  CHECK(h.Percentile(0.5) == 0);
}

TEST_CASE("sequence tracker counts unique, duplicate and late arrivals", "[unit][bench]") {
  SeqTracker t;
  for (uint64_t s : {0, 1, 2, 3}) CHECK(t.Add(s));
  CHECK(t.unique() == 4);
  CHECK_FALSE(t.Add(2));  // duplicate
  CHECK(t.duplicates() == 1);
  CHECK(t.Add(6));  // 4 and 5 missing so far
  CHECK(t.Add(4));  // late (reordered)
  CHECK(t.late() == 1);
  CHECK_FALSE(t.Add(4));  // and now a duplicate
  CHECK(t.duplicates() == 2);
  CHECK(t.unique() == 6);
  CHECK(t.highest_plus_one() == 7);
  // Loss is what the caller expected minus unique: 5 never came.
  CHECK(7 - t.unique() == 1);
  // A jump past the 64-message window forgets older bits: arrivals that old are late.
  CHECK(t.Add(1000));
  CHECK(t.Add(5));
  CHECK(t.late() == 2);
  CHECK_FALSE(t.Add(1000));
  CHECK(t.Add(999));
  CHECK(t.late() == 3);
}

TEST_CASE("rate steps parse as lists and ranges", "[unit][bench]") {
  CHECK(ParseRates("1000") == std::vector<double>{1000});
  CHECK(ParseRates("1000,2000,5000") == std::vector<double>{1000, 2000, 5000});
  CHECK(ParseRates("1000:8000:x2") == std::vector<double>{1000, 2000, 4000, 8000});
  CHECK(ParseRates("1000:4000:+1500") == std::vector<double>{1000, 2500, 4000});
  CHECK(ParseRates("0") == std::vector<double>{0});
  CHECK(ParseRates("").empty());
  CHECK(ParseRates("abc").empty());
  CHECK(ParseRates("1000,-5").empty());
  CHECK(ParseRates("1000:500:x2").empty());
  CHECK(ParseRates("1000:8000:x1").empty());
  CHECK(ParseRates("1000:8000:*2").empty());
}

TEST_CASE("SampleProc splits a process' CPU by thread name", "[unit][bench]") {
  // Two threads of one name burn CPU until /proc shows it (one clock tick is 10 ms), and
  // a third stays idle: the busy name gets their sum, the idle one ~nothing.
  std::atomic<bool> stop{false};
  auto spin = [&](const char* name) {
    pthread_setname_np(pthread_self(), name);
    while (!stop.load(std::memory_order_relaxed)) {
    }
  };
  std::thread a(spin, "bench-busy"), b(spin, "bench-busy");
  std::thread idle([&] {
    pthread_setname_np(pthread_self(), "bench-idle");
    while (!stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  });
  ProcSample s;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    s = SampleProc(getpid());
  } while (std::chrono::steady_clock::now() < deadline && s.thread_cpu_s["bench-busy"] < 0.2);
  const ProcSample later = SampleProc(getpid());  // its total includes every thread's time of `s`
  stop = true;
  a.join();
  b.join();
  idle.join();
  REQUIRE(s.ok);
  CHECK(s.thread_cpu_s["bench-busy"] >= 0.2);
  CHECK(s.thread_cpu_s.count("bench-idle") == 1);
  CHECK(s.thread_cpu_s["bench-idle"] < s.thread_cpu_s["bench-busy"] / 4);
  double sum = 0;
  for (const auto& [name, cpu] : s.thread_cpu_s) sum += cpu;
  CHECK(sum <= later.cpu_s + 0.05);  // the process' total counts every thread (rounding: a tick each)
  CHECK_FALSE(SampleProc(0).ok);
}

}  // namespace
}  // namespace chatd::cli::bench
