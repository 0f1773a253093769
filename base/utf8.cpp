#include "base/utf8.h"

#include <cstdint>
#include <cstring>

namespace chatd {

size_t Utf8Length(std::string_view s) {
  if (s.empty()) return 0;
  auto at = [&](size_t i, unsigned lo, unsigned hi) {
    return i < s.size() && static_cast<unsigned char>(s[i]) >= lo && static_cast<unsigned char>(s[i]) <= hi;
  };
  const auto c = static_cast<unsigned char>(s[0]);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return at(1, 0x80, 0xBF) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    const unsigned lo = c == 0xE0 ? 0xA0 : 0x80;  // E0: no overlong 3-byte forms
    const unsigned hi = c == 0xED ? 0x9F : 0xBF;  // ED: no surrogates
    return at(1, lo, hi) && at(2, 0x80, 0xBF) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    const unsigned lo = c == 0xF0 ? 0x90 : 0x80;  // F0: no overlong 4-byte forms
    const unsigned hi = c == 0xF4 ? 0x8F : 0xBF;  // F4: nothing past U+10FFFF
    return at(1, lo, hi) && at(2, 0x80, 0xBF) && at(3, 0x80, 0xBF) ? 4 : 0;
  }
  return 0;
}

size_t Utf8InvalidAt(std::string_view s) {
  const char* p = s.data();
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    while (i + 8 <= n) {  // the common case: a run of ASCII
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      if (w & 0x8080808080808080ULL) break;
      i += 8;
    }
    if (i >= n) break;
    const size_t len = Utf8Length(s.substr(i));
    if (len == 0) return i;
    i += len;
  }
  return n;
}

}  // namespace chatd
