// Unit tests: token revocation. The store's revocations view (session_revoke and
// user_disable envelopes, independent of arrival order, re-derived by RebuildViews), the
// in-memory Revocations list loaded from it, and TokenService::Verify consulting it.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "base/json.h"
#include "crypto/envelope.h"
#include "relay/auth.h"
#include "store/store.h"

using namespace chatd;
using crypto::Kind;

namespace {

constexpr int64_t kT0 = 1795000000000;

class FakeClock : public Clock {
 public:
  int64_t now = kT0;
  int64_t NowMs() const override { return now; }
};

struct RevocationStore {
  std::string path;
  std::unique_ptr<store::Store> store;
  crypto::KeyPair key = crypto::KeyPair::Generate();
  uint64_t seq = 0;

  RevocationStore() {
    char tmpl[] = "/tmp/chatd-revocation-test-XXXXXX";
    path = mkdtemp(tmpl);
    auto s = store::Store::Open(path, 2, true);
    REQUIRE(s.ok());
    store = std::move(s.value());
  }
  ~RevocationStore() {
    store.reset();
    std::filesystem::remove_all(path);
  }
  // Appends one sealed envelope of origin eu1 (seq and id in order).
  void Append(Kind kind, uint64_t author, std::string body, int64_t created_at) {
    crypto::Envelope e;
    e.origin = "eu1";
    e.seq = ++seq;
    e.id = 5000 + seq;
    e.author = author;
    e.kind = kind;
    e.created_at = created_at;
    e.body = std::move(body);
    REQUIRE(crypto::Seal(e, key).ok());
    auto pos = store->writer().Append(e);
    INFO(pos.status().message());
    REQUIRE(pos.ok());
  }
  void CreateUser(uint64_t id, const std::string& name) {
    crypto::Envelope e;
    e.origin = "eu1";
    e.seq = ++seq;
    e.id = id;
    e.author = id;
    e.kind = Kind::kUserCreate;
    e.created_at = kT0;
    e.body = R"({"username":")" + name + R"(","first_name":"","last_name":""})";
    REQUIRE(crypto::Seal(e, key).ok());
    REQUIRE(store->writer().Append(e).ok());
  }
  std::map<std::pair<uint64_t, uint64_t>, int64_t> NotBefore() {
    auto rows = store->writer().Revocations(0);
    REQUIRE(rows.ok());
    std::map<std::pair<uint64_t, uint64_t>, int64_t> out;
    for (const auto& r : *rows) out[{r.user_id, r.device_id}] = r.not_before;
    return out;
  }
  bool Disabled(uint64_t id) {
    auto u = store->writer().UserById(id);
    REQUIRE(u.ok());
    REQUIRE(u.value());
    return u.value()->disabled;
  }
};

std::string RevokeAll(int64_t not_before) { return R"({"all":true,"not_before":)" + std::to_string(not_before) + "}"; }
std::string RevokeDevice(uint64_t device) { return R"({"device_id":")" + std::to_string(device) + R"("})"; }
std::string Disable(uint64_t user, bool disabled) {
  return R"({"user_id":")" + std::to_string(user) + R"(","disabled":)" + (disabled ? "true" : "false") + "}";
}

}  // namespace

TEST_CASE("revocations view: logout, logout everywhere, disable, the later time wins, rebuild agrees",
          "[store][auth]") {
  RevocationStore s;
  s.CreateUser(101, "alice");
  s.CreateUser(102, "bob");
  // Logout everywhere twice, the later one arriving first: the later time stays.
  s.Append(Kind::kSessionRevoke, 101, RevokeAll(kT0 + 500), kT0 + 500);
  s.Append(Kind::kSessionRevoke, 101, RevokeAll(kT0 + 200), kT0 + 200);
  // One device of bob.
  s.Append(Kind::kSessionRevoke, 102, RevokeDevice(77), kT0 + 300);
  auto nb = s.NotBefore();
  CHECK(nb.size() == 2);
  CHECK(nb[{101, 0}] == kT0 + 500);
  CHECK(nb[{102, 77}] == INT64_MAX);  // that device, for good
  CHECK_FALSE(s.Disabled(102));

  // Disable bob: disabled, and his tokens issued before then are refused for good.
  s.Append(Kind::kUserDisable, 0, Disable(102, true), kT0 + 1000);
  CHECK(s.Disabled(102));
  CHECK(s.NotBefore()[{102, 0}] == kT0 + 1000);
  auto disabled = s.store->writer().DisabledUsers();
  REQUIRE(disabled.ok());
  CHECK(*disabled == std::vector<uint64_t>{102});
  // Enable: no longer disabled; the not-before time stays.
  s.Append(Kind::kUserDisable, 0, Disable(102, false), kT0 + 2000);
  CHECK_FALSE(s.Disabled(102));
  CHECK(s.NotBefore()[{102, 0}] == kT0 + 1000);
  s.Append(Kind::kUserDisable, 0, Disable(101, true), kT0 + 3000);

  // Device rows older than the window are not loaded; user-wide rows always are.
  auto recent = s.store->writer().Revocations(kT0 + 400);
  REQUIRE(recent.ok());
  for (const auto& r : *recent) CHECK(r.device_id == 0);
  CHECK(recent->size() == 2);

  // The view is derived from the log: a rebuild gives the same rows.
  auto before = s.NotBefore();
  REQUIRE(s.store->writer().RebuildViews().ok());
  CHECK(s.NotBefore() == before);
  CHECK(s.Disabled(101));
  CHECK_FALSE(s.Disabled(102));

  // Malformed bodies are refused by the view (the core keeps such envelopes in the log
  // only): no device id, no not_before, no user id.
  crypto::Envelope bad;
  bad.origin = "eu1";
  bad.seq = ++s.seq;
  bad.id = 9999;
  bad.author = 101;
  bad.kind = Kind::kSessionRevoke;
  bad.created_at = kT0;
  bad.body = R"({"all":true})";
  REQUIRE(crypto::Seal(bad, s.key).ok());
  CHECK_FALSE(s.store->writer().Append(bad).ok());
}

TEST_CASE("revocations: loaded from the store, consulted by every token check", "[relay][auth]") {
  RevocationStore s;
  s.CreateUser(101, "alice");
  s.CreateUser(102, "bob");
  s.CreateUser(103, "carol");
  FakeClock clock;
  auto key = crypto::KeyPair::Generate();
  TokenService tokens("eu1", key, 3600, &clock);
  std::string alice_old = tokens.Issue(101, 1);
  std::string bob_dev7 = tokens.Issue(102, 7);
  std::string bob_dev8 = tokens.Issue(102, 8);
  std::string carol = tokens.Issue(103, 9);
  clock.now += 1000;
  std::string alice_new = tokens.Issue(101, 2);

  s.Append(Kind::kSessionRevoke, 101, RevokeAll(kT0 + 1), kT0 + 1);
  s.Append(Kind::kSessionRevoke, 102, RevokeDevice(7), kT0 + 10);
  s.Append(Kind::kUserDisable, 0, Disable(103, true), kT0 + 20);
  REQUIRE(LoadRevocations(s.store->writer(), clock.NowMs(), &tokens.revocations()).ok());

  auto old = tokens.Verify(alice_old);
  REQUIRE_FALSE(old.ok());
  CHECK(old.status().code() == Code::kUnauthorized);
  CHECK(old.status().message() == "token revoked");
  CHECK(tokens.Verify(alice_new).ok());  // issued after the logout everywhere
  auto dev7 = tokens.Verify(bob_dev7);
  REQUIRE_FALSE(dev7.ok());
  CHECK(dev7.status().message() == "token revoked (logged out)");
  CHECK(tokens.Verify(bob_dev8).ok());  // bob's other device
  auto disabled = tokens.Verify(carol);
  REQUIRE_FALSE(disabled.ok());
  CHECK(disabled.status().message() == "account disabled");
  CHECK(tokens.revocations().IsDisabled(103));

  // Enabling carol: her old token (issued before the disable) stays refused, a new one works.
  tokens.revocations().SetDisabled(103, false);
  tokens.revocations().RevokeBefore(103, kT0 + 20);
  CHECK_FALSE(tokens.Verify(carol).ok());
  CHECK(tokens.Verify(tokens.Issue(103, 10)).ok());

  // RevokeBefore keeps the later time.
  tokens.revocations().RevokeBefore(101, kT0 - 5000);
  CHECK_FALSE(tokens.Verify(alice_old).ok());
}

TEST_CASE("revocations: device entries are dropped once no token they refuse can be unexpired", "[relay][auth]") {
  Revocations r;
  r.RevokeDevice(1, 11, kT0);
  r.RevokeDevice(1, 12, kT0 + kDeviceRevocationKeepMs);
  CHECK(r.device_count() == 2);
  CHECK_FALSE(r.Check(1, 11, kT0 + 5).ok());
  r.PruneDevices(kT0 + kDeviceRevocationKeepMs + 1);
  CHECK(r.device_count() == 1);
  CHECK(r.Check(1, 11, kT0 + 5).ok());
  CHECK_FALSE(r.Check(1, 12, kT0 + 5).ok());
  // Adding one more than an hour later prunes by itself.
  r.RevokeDevice(2, 21, kT0 + 3 * kDeviceRevocationKeepMs);
  CHECK(r.device_count() == 1);
}

TEST_CASE("tokens: a token living longer than any relay issues is refused", "[relay][auth]") {
  FakeClock clock;
  auto key = crypto::KeyPair::Generate();
  TokenService tokens("eu1", key, 3600, &clock);
  TokenService long_lived("eu1", key, 2 * 86400, &clock);
  auto r = tokens.Verify(long_lived.Issue(1, 1));
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "token lifetime too long");
  TokenService day("eu1", key, 86400, &clock);
  CHECK(tokens.Verify(day.Issue(1, 1)).ok());
}
