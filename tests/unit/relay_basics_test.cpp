// Unit tests: HLC ids, server frames, JSON helpers, tokens and rate limits.
#include <catch2/catch.hpp>

#include "base/json.h"
#include "base/time.h"
#include "crypto/paseto.h"
#include "relay/auth.h"
#include "relay/hlc.h"
#include "relay/wsframe.h"

using namespace chatd;

namespace {

class FakeClock : public Clock {
 public:
  int64_t now = 1795000000000;
  int64_t NowMs() const override { return now; }
};

}  // namespace

TEST_CASE("hlc: ids are strictly increasing, carry the node and survive a clock going back", "[relay]") {
  Hlc hlc(513);
  int64_t wall = 1795000000000;
  uint64_t prev = 0;
  for (int i = 0; i < 10000; ++i) {
    uint64_t id = hlc.Next(wall + (i % 7 == 0 ? -5000 : 0));  // the wall clock jumps back now and then
    REQUIRE(id > prev);
    REQUIRE(Hlc::NodeOf(id) == 513);
    REQUIRE(id < (uint64_t{1} << 63));
    prev = id;
  }
  // More than 4096 ids in one millisecond borrow from the next one, never repeat.
  Hlc burst(1);
  uint64_t last = 0;
  for (int i = 0; i < 5000; ++i) {
    uint64_t id = burst.Next(wall);
    REQUIRE(id > last);
    last = id;
  }
  CHECK(Hlc::UnixMsOf(last) >= wall);
}

TEST_CASE("hlc: an id from far in the future is not observed, ids never leave 63 bits", "[relay]") {
  Hlc hlc(3);
  int64_t wall = 1795000000000;
  uint64_t far = Hlc::Compose(Hlc::kMaxMs, 0xfff, 1);  // the end of the id space
  hlc.Observe(far, wall);
  uint64_t next = hlc.Next(wall);
  CHECK(Hlc::UnixMsOf(next) <= wall + 1);
  hlc.Observe(far);  // unchecked observe: still never overflows
  uint64_t a = hlc.Next(wall), b = hlc.Next(wall);
  CHECK(a < (uint64_t{1} << 63));
  CHECK(b < (uint64_t{1} << 63));
}

TEST_CASE("hlc: observing a remote id moves the clock past it", "[relay]") {
  Hlc a(1), b(2);
  int64_t wall = 1795000000000;
  uint64_t remote = a.Next(wall + 60000);  // a remote clock one minute ahead
  b.Observe(remote);
  CHECK(b.Next(wall) > remote);
}

TEST_CASE("wsframe: lengths use the 7-bit, 16-bit and 64-bit forms", "[relay]") {
  auto small = MakeTextFrame("hi");
  REQUIRE(small->size() == 4);
  CHECK(static_cast<uint8_t>((*small)[0]) == 0x81);
  CHECK((*small)[1] == 2);
  auto mid = MakeTextFrame(std::string(300, 'x'));
  REQUIRE(mid->size() == 300 + 4);
  CHECK(static_cast<uint8_t>((*mid)[1]) == 126);
  CHECK((static_cast<uint8_t>((*mid)[2]) << 8 | static_cast<uint8_t>((*mid)[3])) == 300);
  auto big = MakeTextFrame(std::string(70000, 'y'));
  REQUIRE(big->size() == 70000 + 10);
  CHECK(static_cast<uint8_t>((*big)[1]) == 127);
  uint64_t n = 0;
  for (int i = 2; i < 10; ++i) n = (n << 8) | static_cast<uint8_t>((*big)[i]);
  CHECK(n == 70000);
}

TEST_CASE("json: field readers name the field and bound strings", "[relay]") {
  json::Doc doc;
  REQUIRE(json::Parse(R"({"a":"x","id":"12","n":5,"big":"123456789","neg":"-1","num":7})", &doc).ok());
  CHECK(*json::GetString(doc, "a", 10) == "x");
  auto too_long = json::GetString(doc, "big", 3);
  REQUIRE_FALSE(too_long.ok());
  CHECK(too_long.status().code() == Code::kTooLarge);
  CHECK(*json::GetId(doc, "id") == 12);
  CHECK(*json::GetId(doc, "num") == 7);  // a JSON number is accepted too
  auto bad = json::GetId(doc, "neg");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("'neg'") != std::string::npos);
  auto missing = json::GetString(doc, "nope", 0);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().message() == "field 'nope' is required");
  auto wrong = json::GetString(doc, "n", 0);
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.status().message() == "field 'n' must be a string");
  CHECK_FALSE(json::Parse("[1,2]", &doc).ok());
  CHECK_FALSE(json::Parse("{\"a\":", &doc).ok());
  CHECK_FALSE(json::Parse("{\"a\":\"\xff\"}", &doc).ok());  // invalid UTF-8
  CHECK_FALSE(json::ParseId("0").has_value());
  CHECK_FALSE(json::ParseId("9223372036854775808").has_value());  // 2^63
  CHECK(json::ParseId("9223372036854775807").value() == 9223372036854775807ULL);
}

TEST_CASE("time: RFC 3339 round trip", "[relay]") {
  int64_t ms = 1768473300123;
  std::string s = Rfc3339Ms(ms);
  CHECK(s == "2026-01-15T10:35:00.123Z");
  int64_t back = 0;
  REQUIRE(ParseRfc3339Ms(s, &back));
  CHECK(back == ms);
  CHECK_FALSE(ParseRfc3339Ms("2026-01-15 10:35:00Z", &back));
  CHECK_FALSE(ParseRfc3339Ms("2026-13-15T10:35:00Z", &back));
}

TEST_CASE("tokens: issued tokens verify, expired, foreign and tampered ones do not", "[relay]") {
  FakeClock clock;
  auto key = crypto::KeyPair::Generate();
  TokenService tokens("eu1", key, 3600, &clock);
  std::string t = tokens.Issue(42, 7);
  auto c = tokens.Verify(t);
  REQUIRE(c.ok());
  CHECK(c->user_id == 42);
  CHECK(c->device_id == 7);
  CHECK(c->relay == "eu1");

  std::string tampered = t;
  tampered[20] = tampered[20] == 'A' ? 'B' : 'A';
  CHECK_FALSE(tokens.Verify(tampered).ok());

  // Signed by another key that claims to be eu1.
  auto other = crypto::KeyPair::Generate();
  TokenService impostor("eu1", other, 3600, &clock);
  CHECK_FALSE(tokens.Verify(impostor.Issue(42, 7)).ok());
  // From a relay we have no key for.
  TokenService stranger("us9", other, 3600, &clock);
  auto unknown = tokens.Verify(stranger.Issue(1, 1));
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.status().message() == "token signed by an unknown relay");
  // Once its key is pinned, it verifies, but only for us9's own users.
  tokens.AddRelayKey("us9", other.public_key());
  tokens.SetHomeLookup([](uint64_t user) -> std::optional<std::string> {
    if (user == 1) return std::string("us9");
    if (user == 42) return std::string("eu1");
    return std::nullopt;
  });
  CHECK(tokens.Verify(stranger.Issue(1, 1)).ok());
  auto not_home = tokens.Verify(stranger.Issue(42, 1));  // us9 vouching for an eu1 user
  REQUIRE_FALSE(not_home.ok());
  CHECK(not_home.status().message() == "token not issued by the user's home relay");
  CHECK_FALSE(tokens.Verify(stranger.Issue(77, 1)).ok());  // a user nobody knows

  clock.now += 3600 * 1000;
  auto expired = tokens.Verify(t);
  REQUIRE_FALSE(expired.ok());
  CHECK(expired.status().message() == "token expired");
  CHECK_FALSE(tokens.Verify("").ok());
  CHECK_FALSE(tokens.Verify(std::string(10000, 'v')).ok());
}

TEST_CASE("tokens: a remembered token is still refused once revoked, expired or its key changes", "[relay]") {
  FakeClock clock;
  auto key = crypto::KeyPair::Generate();
  TokenService tokens("eu1", key, 3600, &clock);
  std::string t = tokens.Issue(42, 7);
  REQUIRE(tokens.Verify(t).ok());
  REQUIRE(tokens.Verify(t).ok());
  CHECK(tokens.verified_cache_size() == 1);  // the second time without a signature check
  CHECK_FALSE(tokens.Verify(t.substr(0, t.size() - 1)).ok());
  CHECK(tokens.verified_cache_size() == 1);  // failures are not remembered

  // A peer's token, remembered, then its key replaced or dropped.
  auto peer = crypto::KeyPair::Generate();
  TokenService us9("us9", peer, 3600, &clock);
  tokens.AddRelayKey("us9", peer.public_key());
  tokens.SetHomeLookup([](uint64_t user) -> std::optional<std::string> {
    return user == 1 ? std::optional<std::string>("us9") : std::nullopt;
  });
  std::string foreign = us9.Issue(1, 1);
  REQUIRE(tokens.Verify(foreign).ok());
  REQUIRE(tokens.Verify(foreign).ok());
  tokens.AddRelayKey("us9", crypto::KeyPair::Generate().public_key());
  CHECK(tokens.Verify(foreign).status().message() == "invalid token");
  tokens.AddRelayKey("us9", peer.public_key());
  REQUIRE(tokens.Verify(foreign).ok());
  tokens.RemoveRelayKey("us9");
  CHECK(tokens.Verify(foreign).status().message() == "token signed by an unknown relay");

  // Revoked while remembered.
  REQUIRE(tokens.Verify(t).ok());
  tokens.revocations().RevokeDevice(42, 7, clock.now);
  auto revoked = tokens.Verify(t);
  REQUIRE_FALSE(revoked.ok());
  CHECK(revoked.status().code() == Code::kUnauthorized);

  // Expired while remembered.
  std::string t2 = tokens.Issue(43, 8);
  REQUIRE(tokens.Verify(t2).ok());
  clock.now += 3600 * 1000;
  CHECK(tokens.Verify(t2).status().message() == "token expired");
}

TEST_CASE("rate limiter: a fixed window per key", "[relay]") {
  FakeClock clock;
  RateLimiter limiter(&clock);
  int retry = 0;
  for (int i = 0; i < 3; ++i) CHECK(limiter.Allow("a", 3, &retry));
  CHECK_FALSE(limiter.Allow("a", 3, &retry));
  CHECK(retry == 60);
  CHECK(limiter.Allow("b", 3, &retry));  // other keys are independent
  clock.now += 30000;
  CHECK_FALSE(limiter.Allow("a", 3, &retry));
  CHECK(retry == 30);
  clock.now += 30000;
  CHECK(limiter.Allow("a", 3, &retry));
}

TEST_CASE("tokens: the verified-token memory stays bounded, and tokens past the bound still verify", "[relay]") {
  FakeClock clock;
  auto key = crypto::KeyPair::Generate();
  TokenService tokens("eu1", key, 3600, &clock);
  // One more distinct token than the memory holds (a token per device).
  const size_t n = TokenService::kVerifiedCacheMax + 1;
  std::string first;
  for (size_t i = 0; i < n; ++i) {
    std::string t = tokens.Issue(42, i + 1);
    if (i == 0) first = t;
    REQUIRE(tokens.Verify(t).ok());
    REQUIRE(tokens.verified_cache_size() <= TokenService::kVerifiedCacheMax);
  }
  CHECK(tokens.verified_cache_size() >= 1);
  // The first token may have been forgotten; it still verifies (by its signature again).
  auto again = tokens.Verify(first);
  REQUIRE(again.ok());
  CHECK(again->device_id == 1);
}
