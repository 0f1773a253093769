// OwnLog (relay/recovery.h): when a relay restored from a backup, or otherwise rolled back,
// may originate envelopes again. The integration test (tests/integration/
// federation_restore_test.cpp) runs the whole recovery with real relays.
#include <catch2/catch.hpp>

#include "relay/recovery.h"

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
