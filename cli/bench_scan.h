// cli/bench_scan.h — the generator's frame reader: finds the few fields it needs in a
// server event without building a DOM, and the numbered, timestamped message content.
//
// A server text frame holds one JSON object or an array of objects (PROTOCOL.md). For an
// object the whole payload is the event; an array is split into its elements by a
// structural scan that skips strings. Fields are found by searching for the quoted key
// followed by optional spaces and a colon, so a key name appearing as a string value is
// not mistaken for the key, and a key inside an escaped string cannot match (its quotes
// are escaped). String values are returned raw (not unescaped): the generator only reads
// values it wrote itself (temp ids, content) or plain ASCII (type, error code).
// A nested object with its own "type" key is not told apart from the event's: the
// generator reads the first one, which chatd always writes first.
//
// The message content carries everything a receiver needs to account for a delivery:
//   "bm <step> <sender> <seq> <intended send time, CLOCK_MONOTONIC ns> xxxx…"
// padded with 'x' to the requested size. Stateless; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace chatd::cli::bench {

struct ScannedEvent {
  std::string_view type;  // raw value of "type"; empty if absent
  std::string_view body;  // the event's JSON text
};

// The raw text of string field `key` (no quotes in `key`), searched anywhere in `body`.
bool FindStringField(std::string_view body, std::string_view key, std::string_view* value);

// Calls fn(const ScannedEvent&) for every event in a frame; returns how many. A frame
// that is neither an object nor an array of objects yields none.
template <typename Fn>
int ForEachEvent(std::string_view payload, Fn&& fn);

// Splits a JSON array of objects into the objects' texts; returns false if malformed.
// (Exposed for ForEachEvent and the tests.)
template <typename Fn>
bool SplitArray(std::string_view payload, Fn&& fn);

struct Stamp {
  uint32_t step = 0;
  uint32_t sender = 0;
  uint64_t seq = 0;
  int64_t t_ns = 0;
};

// Appends the content for `stamp`, padded with 'x' to `size` bytes (never truncated).
void EncodeContent(std::string* out, const Stamp& stamp, size_t size);
// Parses content written by EncodeContent; false if it is not ours.
bool DecodeContent(std::string_view content, Stamp* stamp);

// ---- implementation ----

namespace scan_detail {
// Index just past the string that opens at s[i] == '"', or npos if unterminated.
size_t SkipString(std::string_view s, size_t i);
}  // namespace scan_detail

template <typename Fn>
bool SplitArray(std::string_view p, Fn&& fn) {
  size_t i = 0;
  while (i < p.size() && p[i] != '[') ++i;
  if (i == p.size()) return false;
  ++i;
  int depth = 0;
  size_t start = 0;
  while (i < p.size()) {
    char c = p[i];
    if (c == '"') {
      i = scan_detail::SkipString(p, i);
      if (i == std::string_view::npos) return false;
      continue;
    }
    if (c == '{' || c == '[') {
      if (depth == 0) start = i;
      ++depth;
    } else if (c == '}' || c == ']') {
      if (depth == 0) return c == ']';  // the array's own end
      --depth;
      if (depth == 0) fn(p.substr(start, i + 1 - start));
    }
    ++i;
  }
  return false;
}

template <typename Fn>
int ForEachEvent(std::string_view payload, Fn&& fn) {
  size_t i = 0;
  while (i < payload.size() && (payload[i] == ' ' || payload[i] == '\n' || payload[i] == '\r' || payload[i] == '\t'))
    ++i;
  if (i == payload.size()) return 0;
  if (payload[i] == '{') {
    ScannedEvent ev;
    ev.body = payload.substr(i);
    FindStringField(ev.body, "type", &ev.type);
    fn(static_cast<const ScannedEvent&>(ev));
    return 1;
  }
  if (payload[i] != '[') return 0;
  int n = 0;
  SplitArray(payload.substr(i), [&](std::string_view obj) {
    if (obj.empty() || obj[0] != '{') return;
    ScannedEvent ev;
    ev.body = obj;
    FindStringField(ev.body, "type", &ev.type);
    fn(static_cast<const ScannedEvent&>(ev));
    ++n;
  });
  return n;
}

}  // namespace chatd::cli::bench
