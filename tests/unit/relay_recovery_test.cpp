// OwnLog (relay/recovery.h): when a relay restored from a backup, or otherwise rolled back,
// may originate envelopes again; and the core acting on it (relay/ops_recovery.cpp,
// Core::OpApplyRemote). tests/integration/federation_restore_test.cpp runs the whole
// recovery with real relays.
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <thread>

#include "relay/core.h"
#include "relay/recovery.h"
#include "tests/support/core_fixture.h"

namespace chatd {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;
constexpr int64_t kWaitMs = 300'000;

std::vector<OwnLog::Peer> Peers() { return {{"us1", true}, {"ap1", true}}; }

}  // namespace

TEST_CASE("recovery: a relay never rolled back originates, whatever its peers acknowledge", "[recovery]") {
  OwnLog r;
  r.Start(Peers(), /*restored=*/false, kWaitMs, 10, kT0);
  CHECK_FALSE(r.Holding());
  CHECK_FALSE(r.Waiting());
  // Peers acknowledge what they have of ours: never more than our own log.
  CHECK_FALSE(r.NotePeer("us1", 10));
  CHECK_FALSE(r.NotePeer("ap1", 3));
  CHECK_FALSE(r.NotePeer("ap1", 0));
  r.SetOwn(11);
  CHECK_FALSE(r.NotePeer("us1", 11));
  CHECK_FALSE(r.Holding());
  CHECK(r.WaitEnds(kT0) == "");
  CHECK_FALSE(r.Release());
  auto s = r.Get();
  CHECK_FALSE(s.holding);
  CHECK(s.reason.empty());
  CHECK(s.own == 11);
}

TEST_CASE("recovery: a peer holding more of our own log holds us until our log reaches it", "[recovery]") {
  OwnLog r;
  r.Start(Peers(), false, kWaitMs, 10, kT0);
  CHECK(r.NotePeer("us1", 15));  // rolled back: us1 has 11..15 of ours
  CHECK(r.Holding());
  CHECK_FALSE(r.NotePeer("us1", 15));  // the same report again is nothing new
  CHECK_FALSE(r.NotePeer("ap1", 12));  // less than us1 reported
  CHECK(r.NotePeer("ap1", 17));        // more: recovering up to 17 now
  auto s = r.Get();
  CHECK(s.holding);
  CHECK_FALSE(s.waiting);
  CHECK(s.target == 17);
  CHECK(s.target_peer == "ap1");
  CHECK(s.reason == "the store was rolled back: recovering this relay's own envelopes 11..17 from peer ap1");
  // The envelopes come back one by one.
  for (uint64_t seq = 11; seq < 17; ++seq) {
    r.SetOwn(seq);
    CHECK(r.Holding());
  }
  r.SetOwn(17);
  CHECK_FALSE(r.Holding());
  CHECK(r.Get().reason.empty());
  CHECK(r.Get().target == 0);
  // The operator cannot lift a hold for a peer's report: there was no restored wait.
  CHECK_FALSE(r.Release());
}

TEST_CASE("recovery: an own envelope sent back by a peer holds us as its report would", "[recovery]") {
  OwnLog r;
  r.Start(Peers(), false, kWaitMs, 4, kT0);
  CHECK_FALSE(r.NoteOwnEnvelope("us1", 4));  // a duplicate
  CHECK(r.NoteOwnEnvelope("us1", 6));
  CHECK(r.Holding());
  CHECK_FALSE(r.NoteOwnEnvelope("us1", 5));
  r.SetOwn(6);
  CHECK_FALSE(r.Holding());
}

TEST_CASE("recovery: a restored store waits for every peer's vector and for its own log to catch up", "[recovery]") {
  OwnLog r;
  r.Start(Peers(), /*restored=*/true, kWaitMs, 10, kT0);
  CHECK(r.Holding());
  CHECK(r.Waiting());
  auto s = r.Get();
  CHECK(s.waiting);
  CHECK(s.wait_until_ms == kT0 + kWaitMs);
  CHECK(s.waiting_for == std::vector<std::string>{"us1", "ap1"});
  CHECK(s.reason == "restored from a backup: waiting for the version vectors of peers us1, ap1");
  CHECK(r.WaitEnds(kT0 + 1000) == "");

  bool first = false;
  CHECK(r.NotePeer("us1", 14, &first));
  CHECK(first);
  CHECK_FALSE(r.NotePeer("us1", 14, &first));
  CHECK_FALSE(first);
  CHECK(r.Get().reason == "restored from a backup: recovering this relay's own envelopes 11..14 from peer us1");
  CHECK(r.WaitEnds(kT0 + 2000) == "");  // ap1 not heard yet
  r.SetOwn(14);
  CHECK(r.WaitEnds(kT0 + 2000) == "");
  CHECK(r.Holding());  // caught up with us1, still waiting for ap1
  // ap1 holds nothing of ours (0): heard all the same.
  CHECK_FALSE(r.NotePeer("ap1", 0, &first));
  CHECK(first);
  CHECK(r.WaitEnds(kT0 + 3000) == "caught up with every peer");
  CHECK_FALSE(r.Waiting());
  CHECK_FALSE(r.Holding());
  CHECK(r.WaitEnds(kT0 + 4000) == "");  // said once
}

TEST_CASE("recovery: the restored wait ends at federation.restore_wait, or by the operator", "[recovery]") {
  SECTION("the timeout; a peer's report still holds") {
    OwnLog r;
    r.Start(Peers(), true, kWaitMs, 10, kT0);
    CHECK(r.NotePeer("us1", 12));
    CHECK(r.WaitEnds(kT0 + kWaitMs - 1) == "");
    CHECK(r.WaitEnds(kT0 + kWaitMs) == "federation.restore_wait passed");
    CHECK_FALSE(r.Waiting());
    CHECK(r.Holding());  // us1 has 11..12 of ours: still not ours to reuse
    r.SetOwn(12);
    CHECK_FALSE(r.Holding());
  }
  SECTION("the operator") {
    OwnLog r;
    r.Start(Peers(), true, kWaitMs, 10, kT0);
    CHECK(r.Release());
    CHECK_FALSE(r.Holding());
    CHECK_FALSE(r.Release());
    CHECK(r.WaitEnds(kT0) == "");
  }
  SECTION("no wait configured") {
    OwnLog r;
    r.Start(Peers(), true, 0, 10, kT0);
    CHECK(r.WaitEnds(kT0) == "federation.restore_wait is 0");
    CHECK_FALSE(r.Holding());
  }
  SECTION("no peers pinned: a single relay just starts") {
    OwnLog r;
    r.Start({}, true, kWaitMs, 10, kT0);
    CHECK(r.WaitEnds(kT0) == "no peers are pinned");
    CHECK_FALSE(r.Holding());
  }
  SECTION("the last peer unpinned while waiting") {
    OwnLog r;
    r.Start(Peers(), true, kWaitMs, 10, kT0);
    CHECK_FALSE(r.NotePeer("us1", 10));
    CHECK(r.WaitEnds(kT0 + 10) == "");
    r.SetPeers({{"us1", true}});
    CHECK(r.WaitEnds(kT0 + 20) == "caught up with every peer");
  }
}

TEST_CASE("recovery: a peer pinned by key only is waited for during the grace period only", "[recovery]") {
  OwnLog r;
  r.Start({{"us1", true}, {"ap1", false}}, true, kWaitMs, 10, kT0);
  CHECK_FALSE(r.NotePeer("us1", 10));
  CHECK(r.WaitEnds(kT0 + OwnLog::kKeyOnlyGraceMs - 1) == "");
  CHECK(r.WaitEnds(kT0 + OwnLog::kKeyOnlyGraceMs) == "caught up with every peer");

  // Only key-only peers, none heard: past the grace period it still waits (for one of them
  // to dial, or the timeout).
  OwnLog k;
  k.Start({{"us1", false}, {"ap1", false}}, true, kWaitMs, 10, kT0);
  CHECK(k.WaitEnds(kT0 + OwnLog::kKeyOnlyGraceMs + 1) == "");
  CHECK_FALSE(k.NotePeer("ap1", 3));
  CHECK(k.WaitEnds(kT0 + OwnLog::kKeyOnlyGraceMs + 2) == "caught up with every peer");
}

}  // namespace chatd

// ---- The core: own envelopes taken back from a peer, Emit refused until then --------------

namespace chatd {
namespace {

// One relay's store and core; two of them with one key and name are one relay before and
// after its store was rolled back.
struct Relay1 : chatd::test::CoreFixture {
  explicit Relay1(const crypto::KeyPair& relay_key) : CoreFixture(&relay_key) {}
  Result<TokenGrant> Register(const std::string& name) {
    Core* c = core.get();
    return c->Call<TokenGrant>([c, name] { return c->OpRegister(name, name + "@example.com", "hash", "", ""); });
  }
  uint64_t OwnSeq() {
    for (const auto& [o, s] : core->VectorSnapshot()) {
      if (o == "t1") return s;
    }
    return 0;
  }
  std::vector<crypto::Envelope> OwnLog() {
    auto lease = store->readers().Acquire();
    REQUIRE(lease.ok());
    auto rows = (*lease)->q().EnvelopesFrom("t1", 0, 1000);
    REQUIRE(rows.ok());
    std::vector<crypto::Envelope> out;
    for (auto& r : *rows) out.push_back(std::move(r.env));
    return out;
  }
};

bool WaitUntil(const std::function<bool()>& pred, int timeout_ms = 10000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace

TEST_CASE("recovery: a rolled-back core refuses to emit, takes its own envelopes back, then emits the next seq",
          "[recovery][relay]") {
  crypto::KeyPair key = crypto::KeyPair::Generate();
  std::vector<crypto::Envelope> before;
  {
    Relay1 original(key);
    for (const char* u : {"ann", "ben", "cat"}) REQUIRE(original.Register(u).ok());
    before = original.OwnLog();
  }
  REQUIRE(before.size() == 3);

  Relay1 r(key);  // the same relay, its store rolled back to nothing
  CHECK_FALSE(r.core->Recovering());
  CHECK(r.core->NotePeerOwnSeq("p1", 3));  // a peer's vector: it holds t1 up to 3
  CHECK(r.core->Recovering());
  auto refused = r.Register("dan");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == Code::kUnavailable);
  CHECK(refused.status().retry_after == 5);
  CHECK(refused.status().message().find("recovering this relay's own envelopes 1..3 from peer p1") !=
        std::string::npos);

  // The peer sends them back, out of order: applied in seq order, through the apply rule.
  Core* c = r.core.get();
  for (size_t i : {2, 0, 1}) {
    crypto::Envelope e = before[i];
    REQUIRE(c->Post([c, e]() mutable { c->OpApplyRemote(std::move(e), "p1"); }));
  }
  REQUIRE(WaitUntil([&] { return r.OwnSeq() == 3; }));
  CHECK_FALSE(r.core->Recovering());
  auto after = r.OwnLog();
  REQUIRE(after.size() == 3);
  for (size_t i = 0; i < 3; ++i) CHECK(crypto::HeaderHash(after[i]) == crypto::HeaderHash(before[i]));
  {
    auto lease = r.store->readers().Acquire();
    REQUIRE(lease.ok());
    auto cat = (*lease)->q().UserByHandle("cat@t1");
    REQUIRE(cat.ok());
    CHECK(cat.value().has_value());  // the views follow
  }

  // A duplicate is a no-op; a different envelope with one of our seqs is an alert, never a
  // quarantine of ourselves.
  crypto::Envelope forged = before[1];  // what a rolled-back relay signs when it does not hold
  forged.created_at += 1;
  REQUIRE(crypto::Seal(forged, key).ok());
  REQUIRE(crypto::Verify(forged, key.public_key()).ok());
  for (crypto::Envelope e : {before[1], forged}) {
    REQUIRE(c->Post([c, e]() mutable { c->OpApplyRemote(std::move(e), "p1"); }));
  }
  REQUIRE(WaitUntil([&] { return r.core->stats().equivocations == 1; }));
  CHECK(r.core->stats().remote_duplicates >= 1);
  CHECK(r.core->Quarantined().empty());

  // Whole again: the next envelope is seq 4.
  REQUIRE(r.Register("dan").ok());
  CHECK(r.OwnSeq() == 4);
}

}  // namespace chatd
