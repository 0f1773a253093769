// Field scanning and the message content codec. See bench_scan.h.
#include "cli/bench_scan.h"

#include <algorithm>
#include <cstring>

namespace chatd::cli::bench {

namespace scan_detail {

size_t SkipString(std::string_view s, size_t i) {
  ++i;  // past the opening quote
  while (i < s.size()) {
    const void* q = memchr(s.data() + i, '"', s.size() - i);
    if (!q) return std::string_view::npos;
    size_t at = static_cast<size_t>(static_cast<const char*>(q) - s.data());
    size_t bs = 0;
    while (at - bs > i && s[at - bs - 1] == '\\') ++bs;
    if (bs % 2 == 0) return at + 1;
    i = at + 1;
  }
  return std::string_view::npos;
}

}  // namespace scan_detail

namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Parses a decimal number of at most 19 digits (which cannot overflow 64 bits, so no
// per-digit overflow check); false on no digits or more than 19.
bool ParseU64(std::string_view s, size_t* i, uint64_t* out) {
  uint64_t v = 0;
  size_t start = *i, end = std::min(s.size(), start + 20);
  while (*i < end && static_cast<unsigned char>(s[*i] - '0') < 10) {
    v = v * 10 + static_cast<uint64_t>(s[*i] - '0');
    ++*i;
  }
  *out = v;
  return *i > start && *i - start <= 19;
}

char* PutU64(char* p, uint64_t v) {
  char tmp[20];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) *p++ = tmp[--n];
  return p;
}

}  // namespace

bool FindStringField(std::string_view body, std::string_view key, std::string_view* value) {
  // Fast path: chatd writes "type" first, so most lookups of it end here.
  if (key == "type" && body.size() > 9 && memcmp(body.data(), "{\"type\":\"", 9) == 0) {
    const void* q = memchr(body.data() + 9, '"', body.size() - 9);
    if (q && static_cast<const char*>(q)[-1] != '\\') {
      *value = body.substr(9, static_cast<size_t>(static_cast<const char*>(q) - body.data()) - 9);
      return true;
    }
  }
  // Search for "key" and require: optional spaces, ':', optional spaces, '"'.
  char pat[64];
  if (key.size() + 2 > sizeof pat) return false;
  pat[0] = '"';
  memcpy(pat + 1, key.data(), key.size());
  pat[key.size() + 1] = '"';
  size_t plen = key.size() + 2;
  size_t from = 0;
  while (from < body.size()) {
    const void* hit = memmem(body.data() + from, body.size() - from, pat, plen);
    if (!hit) return false;
    size_t at = static_cast<size_t>(static_cast<const char*>(hit) - body.data());
    size_t j = at + plen;
    from = at + 1;
    // The quote we matched must open a string, not close one ("...\"key\"" is escaped
    // so cannot match; a value equal to the key name is followed by , } or ] instead).
    while (j < body.size() && IsSpace(body[j])) ++j;
    if (j >= body.size() || body[j] != ':') continue;
    ++j;
    while (j < body.size() && IsSpace(body[j])) ++j;
    if (j >= body.size() || body[j] != '"') return false;  // present, but not a string
    size_t end = scan_detail::SkipString(body, j);
    if (end == std::string_view::npos) return false;
    *value = body.substr(j + 1, end - j - 2);
    return true;
  }
  return false;
}

void EncodeContent(std::string* out, const Stamp& s, size_t size) {
  char buf[96];
  char* p = buf;
  memcpy(p, "bm ", 3);
  p += 3;
  p = PutU64(p, s.step);
  *p++ = ' ';
  p = PutU64(p, s.sender);
  *p++ = ' ';
  p = PutU64(p, s.seq);
  *p++ = ' ';
  p = PutU64(p, static_cast<uint64_t>(s.t_ns < 0 ? 0 : s.t_ns));
  size_t n = static_cast<size_t>(p - buf);
  out->append(buf, n);
  if (size > n) {
    out->push_back(' ');
    if (size > n + 1) out->append(size - n - 1, 'x');
  }
}

bool DecodeContent(std::string_view c, Stamp* s) {
  if (c.size() < 3 || c[0] != 'b' || c[1] != 'm' || c[2] != ' ') return false;
  size_t i = 3;
  uint64_t step, sender, seq, t;
  if (!ParseU64(c, &i, &step) || i >= c.size() || c[i++] != ' ') return false;
  if (!ParseU64(c, &i, &sender) || i >= c.size() || c[i++] != ' ') return false;
  if (!ParseU64(c, &i, &seq) || i >= c.size() || c[i++] != ' ') return false;
  if (!ParseU64(c, &i, &t)) return false;
  if (i < c.size() && c[i] != ' ') return false;
  if (step > UINT32_MAX || sender > UINT32_MAX || t > static_cast<uint64_t>(INT64_MAX)) return false;
  s->step = static_cast<uint32_t>(step);
  s->sender = static_cast<uint32_t>(sender);
  s->seq = seq;
  s->t_ns = static_cast<int64_t>(t);
  return true;
}

}  // namespace chatd::cli::bench
