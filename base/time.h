// base/time.h — clocks and RFC 3339 formatting.
//
// Clock is injected where tests need control of time (token expiry, edit windows).
// SystemClock is thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace chatd {

// Milliseconds since the Unix epoch, wall clock.
int64_t NowMs();
// Monotonic milliseconds (for timeouts and rate limits).
int64_t MonoMs();
// Monotonic nanoseconds (for latency measurements).
int64_t MonoNs();
// "2026-01-15T10:35:00.123Z"
std::string Rfc3339Ms(int64_t unix_ms);
// The same into `out`, NUL-terminated, without allocating; returns the length (24 for
// years 0000-9999).
inline constexpr size_t kRfc3339MsMax = 48;
size_t Rfc3339Ms(int64_t unix_ms, char (&out)[kRfc3339MsMax]);

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowMs() const override { return chatd::NowMs(); }
  static const SystemClock& Get();
};

}  // namespace chatd

namespace chatd {
// Parses "YYYY-MM-DDTHH:MM:SS[.fff]Z" (or a +00:00 offset) into unix ms; false if malformed.
bool ParseRfc3339Ms(std::string_view text, int64_t* unix_ms);
}  // namespace chatd
