// Unit tests for base/utf8.h and base/time.h's RFC 3339 formatting: both hand-written for
// the hot path, so each is checked against an independent reference.
#include <catch2/catch.hpp>
#include <cstdio>
#include <ctime>
#include <random>
#include <string>

#include "base/json.h"
#include "base/time.h"
#include "base/utf8.h"

using namespace chatd;

namespace {

// The UTF-8 of one code point (no checks): the reference encoder.
std::string Encode(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// gmtime_r + snprintf: what Rfc3339Ms did before it was formatted by hand.
std::string Reference(int64_t unix_ms) {
  time_t secs = static_cast<time_t>(unix_ms / 1000);
  int ms = static_cast<int>(unix_ms % 1000);
  if (ms < 0) {
    ms += 1000;
    secs -= 1;
  }
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[96];
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
           tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return buf;
}

}  // namespace

TEST_CASE("utf8: every scalar value is accepted, surrogates and beyond U+10FFFF are not", "[base]") {
  for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    std::string s = Encode(cp);
    const bool scalar = cp < 0xD800 || cp > 0xDFFF;
    if (ValidUtf8(s) != scalar || (scalar && Utf8Length(s) != s.size())) {
      FAIL("U+" << std::hex << cp);
    }
  }
  CHECK_FALSE(ValidUtf8("\xF4\x90\x80\x80"));  // U+110000
  CHECK_FALSE(ValidUtf8("\xF5\x80\x80\x80"));
  CHECK_FALSE(ValidUtf8("\xFF"));
}

TEST_CASE("utf8: overlong, truncated and stray bytes are refused where they are", "[base]") {
  CHECK_FALSE(ValidUtf8("\xC0\xAF"));          // '/' in two bytes
  CHECK_FALSE(ValidUtf8("\xC1\xBF"));          // U+7F in two bytes
  CHECK_FALSE(ValidUtf8("\xE0\x80\xAF"));      // '/' in three
  CHECK_FALSE(ValidUtf8("\xE0\x9F\xBF"));      // U+7FF in three
  CHECK_FALSE(ValidUtf8("\xF0\x8F\xBF\xBF"));  // U+FFFF in four
  CHECK_FALSE(ValidUtf8("\xC3"));              // truncated
  CHECK_FALSE(ValidUtf8("\xE2\x82"));
  CHECK_FALSE(ValidUtf8("\xF0\x9F\x98"));
  CHECK_FALSE(ValidUtf8("\x80"));  // a continuation byte alone
  CHECK(ValidUtf8(""));
  CHECK(Utf8Length("") == 0);
  // The offset of the first bad byte, wherever it falls against the 8-byte ASCII steps.
  const std::string ascii(40, 'a');
  for (size_t at = 0; at <= ascii.size(); ++at) {
    for (const char* bad : {"\xFF", "\xC3", "\xED\xA0\x80", "\xC3\x28"}) {
      std::string s = ascii.substr(0, at) + bad + ascii.substr(at);
      INFO("at " << at);
      CHECK(Utf8InvalidAt(s) == at);
    }
    std::string good = ascii.substr(0, at) + "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80" + ascii.substr(at);
    CHECK(Utf8InvalidAt(good) == good.size());
  }
}

TEST_CASE("json: frames are checked for UTF-8 before they are parsed", "[base]") {
  json::Doc doc;
  CHECK(json::Parse("{\"content\":\"caf\xC3\xA9 \xF0\x9F\x98\x80\"}", &doc).ok());
  CHECK(json::GetString(doc, "content", 1000).value() == "caf\xC3\xA9 \xF0\x9F\x98\x80");
  auto bad = json::Parse("{\"content\":\"abc\xED\xA0\x80\"}", &doc);  // a surrogate
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.code() == Code::kBadRequest);
  CHECK(bad.message() == "malformed JSON at offset 15: invalid UTF-8");
  // Escapes are rapidjson's to check: a lone surrogate escape is refused too.
  CHECK_FALSE(json::Parse("{\"content\":\"\\ud800\"}", &doc).ok());
  CHECK(json::Parse("{\"content\":\"\\ud83d\\ude00\"}", &doc).ok());
  CHECK(json::GetString(doc, "content", 1000).value() == "\xF0\x9F\x98\x80");
  // Outside strings, a non-ASCII byte is a syntax error, valid UTF-8 or not.
  CHECK_FALSE(json::Parse("{\"a\":1}\xC3\xA9", &doc).ok());
}

TEST_CASE("time: RFC 3339 formatting matches gmtime for any time a clock can give", "[base]") {
  // Day boundaries and leap days around the epoch and the century years.
  for (int64_t ms :
       {int64_t{0}, int64_t{-1}, int64_t{-1000}, int64_t{-86400000}, int64_t{951782400000}, int64_t{951868799999},
        int64_t{4107456000000}, int64_t{4107542399999}, int64_t{253402300799999}, int64_t{-62167219200000}}) {
    CHECK(Rfc3339Ms(ms) == Reference(ms));
  }
  CHECK(Rfc3339Ms(951782400000) == "2000-02-29T00:00:00.000Z");
  CHECK(Rfc3339Ms(-1) == "1969-12-31T23:59:59.999Z");
  // Every day from 1900 to 2200, at a time of day that moves through the day.
  for (int64_t day = -25567; day < 84006; ++day) {
    const int64_t ms = day * 86400000 + (day * 7919 % 86400000 + 86400000) % 86400000;
    if (Rfc3339Ms(ms) != Reference(ms)) FAIL(ms << ": " << Rfc3339Ms(ms) << " vs " << Reference(ms));
  }
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int64_t> any(-62167219200000, 253402300799999);  // years 0000-9999
  for (int i = 0; i < 100000; ++i) {
    const int64_t ms = any(rng);
    if (Rfc3339Ms(ms) != Reference(ms)) FAIL(ms << ": " << Rfc3339Ms(ms) << " vs " << Reference(ms));
  }
  CHECK(Rfc3339Ms(253402300800000) == Reference(253402300800000));  // year 10000: the long form
}
