#include "base/time.h"

#include <algorithm>
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

namespace {

// Howard Hinnant's civil_from_days: the proleptic Gregorian date of a day number (days
// since 1970-01-01).
void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

char* Digits(char* p, unsigned v, int n) {
  for (int i = n - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  return p + n;
}

}  // namespace

size_t Rfc3339Ms(int64_t unix_ms, char (&out)[kRfc3339MsMax]) {
  // Floor division, so that times before 1970 get a positive millisecond field.
  int64_t secs = unix_ms / 1000;
  auto ms = static_cast<int>(unix_ms % 1000);
  if (ms < 0) {
    ms += 1000;
    secs -= 1;
  }
  int64_t days = secs / 86400;
  int64_t sod = secs % 86400;
  if (sod < 0) {
    sod += 86400;
    days -= 1;
  }
  int64_t year;
  unsigned month, day;
  CivilFromDays(days, &year, &month, &day);
  if (year < 0 || year > 9999) {  // never from a real clock; keep the long form right
    const int n =
        snprintf(out, sizeof out, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<long long>(year), month, day,
                 static_cast<int>(sod / 3600), static_cast<int>(sod / 60 % 60), static_cast<int>(sod % 60), ms);
    return std::min(static_cast<size_t>(n), sizeof out - 1);
  }
  // Formatted by hand: this runs twice per message sent (snprintf was 2% of the core's
  // instructions).
  char* p = Digits(out, static_cast<unsigned>(year), 4);
  *p++ = '-';
  p = Digits(p, month, 2);
  *p++ = '-';
  p = Digits(p, day, 2);
  *p++ = 'T';
  p = Digits(p, static_cast<unsigned>(sod / 3600), 2);
  *p++ = ':';
  p = Digits(p, static_cast<unsigned>(sod / 60 % 60), 2);
  *p++ = ':';
  p = Digits(p, static_cast<unsigned>(sod % 60), 2);
  *p++ = '.';
  p = Digits(p, static_cast<unsigned>(ms), 3);
  *p++ = 'Z';
  *p = '\0';
  return static_cast<size_t>(p - out);
}

std::string Rfc3339Ms(int64_t unix_ms) {
  char buf[kRfc3339MsMax];
  return std::string(buf, Rfc3339Ms(unix_ms, buf));
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
