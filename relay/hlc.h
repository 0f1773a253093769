// relay/hlc.h — hybrid logical clock producing 63-bit time-ordered snowflake ids.
//
//   id = (ms since 2024-01-01 UTC) << 22 | logical counter (12 bits) << 10 | node (10 bits)
//
// Local events take max(wall, last); received ids are observed so that if A causally
// precedes B then id(A) < id(B). Not thread-safe: owned by the core thread.
#pragma once

#include <cstdint>

namespace chatd {

class Hlc {
 public:
  static constexpr int64_t kEpochMs = 1704067200000;  // 2024-01-01T00:00:00Z
  static constexpr int64_t kMaxMs = (int64_t{1} << 41) - 1;
  explicit Hlc(uint32_t node) : node_(node & 0x3ff) {}

  uint64_t Next(int64_t wall_ms) {
    int64_t ms = wall_ms - kEpochMs;
    if (ms < 0) ms = 0;
    if (ms > last_ms_) {
      last_ms_ = ms;
      counter_ = 0;
    } else if (++counter_ > 0xfff) {
      ++last_ms_;  // borrow from the future rather than repeat an id
      counter_ = 0;
    }
    if (last_ms_ > kMaxMs) last_ms_ = kMaxMs;  // never leave the 41-bit range
    return Compose(last_ms_, counter_, node_);
  }

  // Moves the clock past a received id, unless that id claims a time more than
  // kMaxSkewMs ahead of our wall clock (a peer with a broken or hostile clock must not
  // drag our ids toward the end of the id space).
  static constexpr int64_t kMaxSkewMs = 10 * 60 * 1000;
  void Observe(uint64_t id, int64_t wall_ms) {
    if (static_cast<int64_t>(id >> 22) > wall_ms - kEpochMs + kMaxSkewMs) return;
    Observe(id);
  }
  void Observe(uint64_t id) {
    int64_t ms = static_cast<int64_t>(id >> 22);
    uint32_t c = static_cast<uint32_t>((id >> 10) & 0xfff);
    if (ms > last_ms_ || (ms == last_ms_ && c > counter_)) {
      last_ms_ = ms;
      counter_ = c;
    }
  }

  static uint64_t Compose(int64_t ms, uint32_t counter, uint32_t node) {
    return (static_cast<uint64_t>(ms) << 22) | (static_cast<uint64_t>(counter & 0xfff) << 10) | (node & 0x3ff);
  }
  static int64_t UnixMsOf(uint64_t id) { return static_cast<int64_t>(id >> 22) + kEpochMs; }
  static uint32_t NodeOf(uint64_t id) { return static_cast<uint32_t>(id & 0x3ff); }

 private:
  uint32_t node_;
  int64_t last_ms_ = 0;
  uint32_t counter_ = 0;
};

}  // namespace chatd
