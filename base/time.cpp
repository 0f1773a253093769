#include "base/time.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace chatd {

int64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

int64_t MonoMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

int64_t MonoNs() {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count();
}

std::string Rfc3339Ms(int64_t unix_ms) {
  time_t secs = static_cast<time_t>(unix_ms / 1000);
  int ms = static_cast<int>(unix_ms % 1000);
  if (ms < 0) {
    ms += 1000;
    secs -= 1;
  }
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[96];  // roomy enough for any int fields, so no truncation warning
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return buf;
}

const SystemClock& SystemClock::Get() {
  static const SystemClock clock;
  return clock;
}

}  // namespace chatd

namespace chatd {

bool ParseRfc3339Ms(std::string_view t, int64_t* unix_ms) {
  auto num = [&](size_t pos, size_t len, int* out) {
    if (pos + len > t.size()) return false;
    int v = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (t[i] < '0' || t[i] > '9') return false;
      v = v * 10 + (t[i] - '0');
    }
    *out = v;
    return true;
  };
  int Y, M, D, h, m, s, ms = 0;
  if (t.size() < 20 || !num(0, 4, &Y) || t[4] != '-' || !num(5, 2, &M) || t[7] != '-' || !num(8, 2, &D) ||
      (t[10] != 'T' && t[10] != 't') || !num(11, 2, &h) || t[13] != ':' || !num(14, 2, &m) || t[16] != ':' ||
      !num(17, 2, &s)) {
    return false;
  }
  size_t p = 19;
  if (p < t.size() && t[p] == '.') {
    size_t start = ++p;
    while (p < t.size() && t[p] >= '0' && t[p] <= '9') ++p;
    if (p == start) return false;
    int digits = 0;
    for (size_t i = start; i < p && digits < 3; ++i, ++digits) ms = ms * 10 + (t[i] - '0');
    for (; digits < 3; ++digits) ms *= 10;
  }
  std::string_view zone = t.substr(p);
  if (zone != "Z" && zone != "z" && zone != "+00:00") return false;
  if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || s > 60) return false;
  struct tm tm {};
  tm.tm_year = Y - 1900;
  tm.tm_mon = M - 1;
  tm.tm_mday = D;
  tm.tm_hour = h;
  tm.tm_min = m;
  tm.tm_sec = s;
  time_t secs = timegm(&tm);
  *unix_ms = static_cast<int64_t>(secs) * 1000 + ms;
  return true;
}

}  // namespace chatd
