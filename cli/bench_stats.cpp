// The latency histogram's bucket arithmetic and the sequence tracker. See bench_stats.h.
#include "cli/bench_stats.h"

#include <algorithm>
#include <cmath>

namespace chatd::cli::bench {

namespace {

constexpr int kMaxMsb = 62;  // int64 values are below 2^63

}  // namespace

int LatencyHistogram::NumBuckets() { return kSub * (kMaxMsb - kSubBits + 1) + kSub; }

int LatencyHistogram::BucketOf(int64_t value) {
  if (value < 0) value = 0;
  auto v = static_cast<uint64_t>(value);
  if (v < 2 * static_cast<uint64_t>(kSub)) return static_cast<int>(v);  // exact below 256
  int msb = 63 - __builtin_clzll(v);
  int shift = msb - kSubBits;
  auto mant = static_cast<int>(v >> shift);  // in [kSub, 2 * kSub)
  return kSub * shift + mant;
}

int64_t LatencyHistogram::BucketLow(int bucket) {
  if (bucket < 2 * kSub) return bucket;
  int shift = bucket / kSub - 1;
  int64_t mant = bucket % kSub + kSub;
  return mant << shift;
}

int64_t LatencyHistogram::BucketHigh(int bucket) {
  if (bucket < 2 * kSub) return bucket;
  int shift = bucket / kSub - 1;
  int64_t mant = bucket % kSub + kSub;
  // (mant + 1) << shift can reach 2^63 for the last bucket: compute without overflow.
  return (mant << shift) + ((int64_t{1} << shift) - 1);
}

LatencyHistogram::LatencyHistogram() : counts_(static_cast<size_t>(NumBuckets()), 0) {}

void LatencyHistogram::Record(int64_t value) {
  if (value < 0) value = 0;
  counts_[static_cast<size_t>(BucketOf(value))]++;
  if (count_ == 0 || value < min_) min_ = value;
  if (count_ == 0 || value > max_) max_ = value;
  count_++;
  sum_ += value;
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  if (count_ == 0 || other.min_ < min_) min_ = other.min_;
  if (count_ == 0 || other.max_ > max_) max_ = other.max_;
  count_ += other.count_;
  sum_ += other.sum_;
}

void LatencyHistogram::Reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  min_ = max_ = 0;
  sum_ = 0;
}

int64_t LatencyHistogram::Percentile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  if (rank < 1) rank = 1;
  if (rank > count_) rank = count_;
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      int64_t v = BucketHigh(static_cast<int>(i));
      return std::clamp(v, min_, max_);
    }
  }
  return max_;
}

bool SeqTracker::Add(uint64_t seq) {
  if (seq >= hi_) {
    uint64_t shift = seq - hi_ + 1;
    seen_ = shift >= 64 ? 0 : seen_ << shift;
    seen_ |= 1;
    hi_ = seq + 1;
    unique_++;
    return true;
  }
  uint64_t back = hi_ - 1 - seq;  // 0 = the highest seen
  if (back < 64) {
    uint64_t bit = uint64_t{1} << back;
    if (seen_ & bit) {
      duplicates_++;
      return false;
    }
    seen_ |= bit;
  }
  // Older than the window: counted as a late arrival (a duplicate this old is not told apart).
  late_++;
  unique_++;
  return true;
}

}  // namespace chatd::cli::bench
