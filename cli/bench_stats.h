// cli/bench_stats.h — the numbers `chatctl bench` collects: a latency histogram and a
// per-stream sequence tracker (loss, duplicates, reordering).
//
// LatencyHistogram is log-linear (HdrHistogram's layout with 128 sub-buckets per power of
// two): values 0..255 are exact, larger ones are kept within 1/128 (0.8%) of their true
// value, over the whole int64 range, in fixed memory (~58 KB). Record() is a few
// instructions and never allocates, so it sits on the receive path. Percentile() answers
// the highest value equivalent to the bucket that holds the requested rank (clamped to the
// largest value recorded), so it never under-reports a tail.
//
// SeqTracker follows one sender's numbered messages as seen by one receiver. It counts
// unique arrivals, exact duplicates (within a 64-message window) and late arrivals (a
// number lower than one already seen). Loss is what the caller expected minus unique().
//
// Neither type is thread-safe: each generator thread owns its own and merges at the end.
#pragma once

#include <cstdint>
#include <vector>

namespace chatd::cli::bench {

class LatencyHistogram {
 public:
  static constexpr int kSubBits = 7;  // 128 sub-buckets: 0.8% precision
  static constexpr int kSub = 1 << kSubBits;

  LatencyHistogram();

  void Record(int64_t value);
  void Merge(const LatencyHistogram& other);
  void Reset();

  uint64_t count() const { return count_; }
  int64_t min() const { return count_ ? min_ : 0; }
  int64_t max() const { return count_ ? max_ : 0; }
  double mean() const { return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0; }
  // q in [0, 1]: the value at rank ceil(q * count) (at least rank 1); 0 when empty.
  int64_t Percentile(double q) const;

  // Bucket arithmetic, public for the tests.
  static int BucketOf(int64_t value);
  static int64_t BucketLow(int bucket);
  static int64_t BucketHigh(int bucket);
  static int NumBuckets();

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  int64_t min_ = 0, max_ = 0;
  __int128 sum_ = 0;
};

class SeqTracker {
 public:
  // Returns false for a duplicate.
  bool Add(uint64_t seq);

  uint64_t unique() const { return unique_; }
  uint64_t duplicates() const { return duplicates_; }
  uint64_t late() const { return late_; }
  uint64_t highest_plus_one() const { return hi_; }

 private:
  uint64_t hi_ = 0;    // one past the highest number seen
  uint64_t seen_ = 0;  // bit i: hi_ - 1 - i was seen
  uint64_t unique_ = 0, duplicates_ = 0, late_ = 0;
};

}  // namespace chatd::cli::bench
