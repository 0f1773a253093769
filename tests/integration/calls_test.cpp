// Call signalling (PROTOCOL.md "call signalling", docs/WEBSOCKET.md "Call signalling"):
// call_invite, call_ringing, call_answer, call_ice, call_reject and call_end are
// forwarded to the sessions of a chat's members (the sender's other devices included,
// the sending session not), checked for membership, blocks and bounds, never stored;
// across a federation too. Real relays, real WebSocket clients.
#include "tests/integration/harness.h"
#include "tests/support/fed_chain.h"
#include "tests/support/fed_checks.h"

namespace chatd::test {
namespace {

using Who = std::pair<WsSession*, const char*>;  // a session and its name in messages

// A second device of `user`: a fresh login's access token.
std::string SecondDevice(const RelayProcess& relay, const TestUser& user) {
  HttpResponse login = ApiPost(relay.api(), "/auth/login",
                               JsonBuilder().Add("username", user.username).Add("password", user.password).str());
  INFO(login.Describe());
  REQUIRE(login.status == 200);
  return StrOf(Get(login.data(), "access_token"));
}

// {"type":TYPE,"chat_id":CHAT,"call_id":CALL, ...extra}: `extra` is JSON members ("" for none).
std::string Signal(const std::string& type, const std::string& chat, const std::string& call,
                   const std::string& extra = "") {
  std::string f = JsonBuilder().Add("type", type).Add("chat_id", chat).Add("call_id", call).str();
  if (!extra.empty()) f = f.substr(0, f.size() - 1) + "," + extra + "}";
  return f;
}

// The call events each session has taken with Expect (their texts), for "never twice" checks.
std::map<const WsSession*, std::set<std::string>>& Taken() {
  static std::map<const WsSession*, std::set<std::string>> taken;
  return taken;
}

// The next event of `type` for `call` on `s` (within the deadline), checked to come from `from`.
Json Expect(WsSession& s, const std::string& type, const std::string& call, const TestUser& from, const char* who,
            int ms = kEventMs) {
  INFO(who << " waits for " << type);
  auto ev = s.WaitFor([&](const Json& e) { return e.type() == type && e.Str("call_id") == call; }, ms);
  REQUIRE_MSG(ev.ok(), who << ": no " << type << ": " << ev.status().message());
  INFO(ev->text());
  CHECK(ev->Str("user_id") == from.user_id);
  CHECK(IsDecimalId((*ev)["device_id"]));
  CHECK_FALSE(ev->Has("cursor"));  // ephemeral
  Taken()[&s].insert(ev->text());
  return std::move(ev).value();
}

// After a ping round trip, `s` holds no event of `type` for `call`. Only meaningful once
// another session got that event: a batch's deliveries are queued together, so anything
// for `s` would be ahead of its pong.
void ExpectNone(WsSession& s, const std::string& type, const std::string& call, const char* who) {
  INFO(who << " must not get " << type);
  REQUIRE(s.Barrier().ok());
  for (const auto& e : s.pending()) {
    INFO(e.text());
    CHECK_FALSE((e.type() == type && e.Str("call_id") == call));
  }
}

// The error answering a call frame sent on `s` (ref = the frame's type).
Json ExpectError(WsSession& s, const std::string& frame, const std::string& type, const std::string& code) {
  SEND(s, frame);
  auto ev = s.WaitFor([&](const Json& e) { return e.type() == "error" && e.Str("ref") == type; }, kEventMs);
  INFO("frame: " << frame.substr(0, 200));
  REQUIRE_MSG(ev.ok(), "no error for " << type << ": " << ev.status().message());
  INFO(ev->text());
  CHECK(ev->Str("code") == code);
  return std::move(ev).value();
}

// One relay with three registered users.
struct Trio {
  std::unique_ptr<RelayProcess> relay;
  TestUser alice, bob, carol;
};
Trio StartTrio() {
  Trio t{StartRelay(), {}, {}, {}};
  t.alice = MUST(RegisterUser(*t.relay, "alice"));
  t.bob = MUST(RegisterUser(*t.relay, "bob"));
  t.carol = MUST(RegisterUser(*t.relay, "carol"));
  return t;
}

}  // namespace

TEST_CASE("calls: invite, ringing, answer, ice and end reach the other devices of both users in a direct chat",
          "[integration][calls][ws]") {
  Taken().clear();
  Trio t = StartTrio();
  auto& [relay, alice, bob, carol] = t;
  std::string chat = MUST(CreateChat(relay->api(), alice.access_token, "direct", {bob.user_id}));
  MUST(CreateChat(relay->api(), carol.access_token, "direct", {alice.user_id}));  // carol knows alice, not this chat
  int64_t envelopes = MUST(GetAdminStatus(*relay)).envelopes;
  WsSession a1 = MUST(Auth(*relay, alice.access_token));
  WsSession a2 = MUST(Auth(*relay, SecondDevice(*relay, alice)));
  WsSession b1 = MUST(Auth(*relay, bob.access_token));
  WsSession b2 = MUST(Auth(*relay, SecondDevice(*relay, bob)));
  WsSession c1 = MUST(Auth(*relay, carol.access_token));

  // alice calls from device 1: bob's two devices ring, her device 2 learns of the call.
  const std::string offer =
      "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n";
  SEND(a1, Signal("call_invite", chat, "call-1",
                  "\"media\":\"video\",\"sdp\":" + Quote(offer) + ",\"cursor\":\"99\",\"user_id\":\"" + bob.user_id +
                      "\""));
  for (auto [s, who] : {Who{&b1, "bob 1"}, Who{&b2, "bob 2"}, Who{&a2, "alice 2"}}) {
    Json ev = Expect(*s, "call_invite", "call-1", alice, who);
    CHECK(ev.Str("chat_id") == chat);
    CHECK(ev.Str("media") == "video");
    CHECK(ev.Str("sdp") == offer);
    CHECK(ev.Str("device_id") == a1.auth_ok.Str("device_id"));
    CHECK_FALSE(ev.Has("to_user_id"));
  }
  ExpectNone(a1, "call_invite", "call-1", "alice 1 (the sender)");
  ExpectNone(c1, "call_invite", "call-1", "carol (no member)");

  // bob's device 1 rings, then answers: alice's devices and bob's device 2 (stop ringing) hear it.
  SEND(b1, Signal("call_ringing", chat, "call-1"));
  Expect(a1, "call_ringing", "call-1", bob, "alice 1");
  Expect(a2, "call_ringing", "call-1", bob, "alice 2");
  Expect(b2, "call_ringing", "call-1", bob, "bob 2");
  const std::string answer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=answer\r\n";
  SEND(b1, Signal("call_answer", chat, "call-1", "\"sdp\":" + Quote(answer)));
  for (auto [s, who] : {Who{&a1, "alice 1"}, Who{&a2, "alice 2"}, Who{&b2, "bob 2"}}) {
    Json ev = Expect(*s, "call_answer", "call-1", bob, who);
    CHECK(ev.Str("sdp") == answer);
    CHECK(ev.Str("device_id") == b1.auth_ok.Str("device_id"));
  }
  ExpectNone(b1, "call_answer", "call-1", "bob 1 (the sender)");

  // ICE candidates both ways, with their m-line.
  const std::string cand_a = "candidate:842163049 1 udp 1677729535 198.51.100.7 46154 typ srflx";
  SEND(a1, Signal("call_ice", chat, "call-1",
                  "\"candidate\":" + Quote(cand_a) + ",\"sdp_mid\":\"0\",\"sdp_mline_index\":0"));
  {
    Json ev = Expect(b1, "call_ice", "call-1", alice, "bob 1");
    CHECK(ev.Str("candidate") == cand_a);
    CHECK(ev.Str("sdp_mid") == "0");
    CHECK(ev["sdp_mline_index"].IsInt64());
    CHECK(ev["sdp_mline_index"].GetInt64() == 0);
  }
  const std::string cand_b = "candidate:1 1 udp 2122260223 192.0.2.10 50000 typ host";
  SEND(b1, Signal("call_ice", chat, "call-1", "\"candidate\":" + Quote(cand_b) + ",\"sdp_mline_index\":1"));
  {
    Json ev = Expect(a1, "call_ice", "call-1", bob, "alice 1");
    CHECK(ev.Str("candidate") == cand_b);
    CHECK_FALSE(ev.Has("sdp_mid"));
    CHECK(ev["sdp_mline_index"].GetInt64() == 1);
  }

  // alice hangs up.
  SEND(a1, Signal("call_end", chat, "call-1", "\"reason\":\"hangup\""));
  for (auto [s, who] : {Who{&b1, "bob 1"}, Who{&b2, "bob 2"}, Who{&a2, "alice 2"}}) {
    CHECK(Expect(*s, "call_end", "call-1", alice, who).Str("reason") == "hangup");
  }
  // A second call, rejected by bob on device 2.
  SEND(a1, Signal("call_invite", chat, "call-2", "\"media\":\"audio\""));
  CHECK_FALSE(Expect(b2, "call_invite", "call-2", alice, "bob 2").Has("sdp"));
  SEND(b2, Signal("call_reject", chat, "call-2", "\"reason\":\"busy\""));
  CHECK(Expect(a1, "call_reject", "call-2", bob, "alice 1").Str("reason") == "busy");
  CHECK(Expect(b1, "call_reject", "call-2", bob, "bob 1").Str("reason") == "busy");
  // No session got a signal twice (those not taken above are left queued); carol got
  // none; nothing was stored.
  for (auto [s, who] :
       {Who{&a1, "alice 1"}, Who{&a2, "alice 2"}, Who{&b1, "bob 1"}, Who{&b2, "bob 2"}, Who{&c1, "carol"}}) {
    INFO(who);
    REQUIRE(s->Barrier().ok());
    std::set<std::string> seen = Taken()[s];
    for (const auto& e : s->pending()) {
      INFO(e.text());
      if (e.type().rfind("call_", 0) == 0) CHECK((s != &c1 && seen.insert(e.text()).second));
    }
  }
  CHECK(MUST(GetAdminStatus(*relay)).envelopes == envelopes);
  CHECK(MUST(History(relay->api(), alice.access_token, chat)).empty());
}

TEST_CASE("calls: non-members, blocked pairs and bad input get errors, the session keeps working",
          "[integration][calls][ws]") {
  Trio t = StartTrio();
  auto& [relay, alice, bob, carol] = t;
  std::string chat = MUST(CreateChat(relay->api(), alice.access_token, "direct", {bob.user_id}));
  WsSession a1 = MUST(Auth(*relay, alice.access_token));
  WsSession b1 = MUST(Auth(*relay, bob.access_token));
  WsSession c1 = MUST(Auth(*relay, carol.access_token));
  const std::string invite = "\"media\":\"audio\"";

  // Not a member; no such chat; to_user_id not a member.
  ExpectError(c1, Signal("call_invite", chat, "x-1", invite), "call_invite", "not_member");
  ExpectError(c1, Signal("call_end", chat, "x-1"), "call_end", "not_member");
  ExpectError(a1, Signal("call_invite", "123456789", "x-2", invite), "call_invite", "not_found");
  ExpectError(a1, Signal("call_invite", chat, "x-3", invite + ",\"to_user_id\":\"" + carol.user_id + "\""),
              "call_invite", "not_found");

  // Bad input: each answer names the field.
  auto bad = [&](const std::string& frame, const std::string& type, const std::string& code, const std::string& field) {
    Json ev = ExpectError(a1, frame, type, code);
    CHECK(ev.Str("message").find("'" + field + "'") != std::string::npos);
  };
  bad(JsonBuilder().Add("type", "call_invite").Add("chat_id", chat).Add("media", "audio").str(), "call_invite",
      "bad_request", "call_id");
  bad(JsonBuilder().Add("type", "call_ringing").Add("call_id", "c").str(), "call_ringing", "bad_request", "chat_id");
  bad(Signal("call_invite", chat, "has space", invite), "call_invite", "bad_request", "call_id");
  bad(Signal("call_invite", chat, std::string(65, 'x'), invite), "call_invite", "too_large", "call_id");
  bad(Signal("call_invite", chat, "x-4", "\"media\":\"hologram\""), "call_invite", "bad_request", "media");
  bad(Signal("call_invite", chat, "x-4"), "call_invite", "bad_request", "media");
  bad(Signal("call_invite", chat, "x-4", invite + ",\"sdp\":" + Quote(std::string(16385, 'v'))), "call_invite",
      "too_large", "sdp");
  bad(Signal("call_answer", chat, "x-4"), "call_answer", "bad_request", "sdp");
  bad(Signal("call_ice", chat, "x-4", "\"candidate\":42"), "call_ice", "bad_request", "candidate");
  bad(Signal("call_ice", chat, "x-4", "\"candidate\":\"c\",\"sdp_mline_index\":-1"), "call_ice", "bad_request",
      "sdp_mline_index");
  bad(Signal("call_end", chat, "x-4", "\"reason\":" + Quote(std::string(65, 'r'))), "call_end", "too_large", "reason");
  bad(Signal("call_invite", chat, "x-4", invite + ",\"to_user_id\":\"bob\""), "call_invite", "bad_request",
      "to_user_id");

  // The session still works, and an SDP at the 16 KiB bound fits in a frame.
  const std::string big_sdp(16384, 'v');
  SEND(a1, Signal("call_invite", chat, "ok-1", invite + ",\"sdp\":" + Quote(big_sdp)));
  CHECK(Expect(b1, "call_invite", "ok-1", alice, "bob").Str("sdp") == big_sdp);

  // A block, either way, stops signals in the direct chat; unblocking restores them.
  HttpResponse blk =
      ApiPost(relay->api(), "/blocks", JsonBuilder().Add("user_id", alice.user_id).str(), bob.access_token);
  INFO(blk.Describe());
  REQUIRE(blk.status == 201);
  ExpectError(a1, Signal("call_invite", chat, "blk-1", invite), "call_invite", "blocked");
  ExpectError(b1, Signal("call_invite", chat, "blk-2", invite), "call_invite", "blocked");
  ExpectError(b1, Signal("call_end", chat, "ok-1"), "call_end", "blocked");
  ExpectNone(a1, "call_end", "ok-1", "alice (blocked by bob)");
  REQUIRE(ApiDelete(relay->api(), "/blocks/" + alice.user_id, bob.access_token).status == 204);
  SEND(a1, Signal("call_invite", chat, "ok-2", invite));
  Expect(b1, "call_invite", "ok-2", alice, "bob after the unblock");
  ExpectNone(b1, "call_invite", "blk-1", "bob");
}

TEST_CASE("calls: to_user_id in a group reaches only that member and the sender's devices",
          "[integration][calls][ws]") {
  Trio t = StartTrio();
  auto& [relay, alice, bob, carol] = t;
  TestUser dave = MUST(RegisterUser(*relay, "dave"));
  std::string group = MUST(CreateChat(relay->api(), alice.access_token, "group", {bob.user_id, carol.user_id}, "trio"));
  WsSession a1 = MUST(Auth(*relay, alice.access_token));
  WsSession a2 = MUST(Auth(*relay, SecondDevice(*relay, alice)));
  WsSession b1 = MUST(Auth(*relay, bob.access_token));
  WsSession c1 = MUST(Auth(*relay, carol.access_token));
  WsSession d1 = MUST(Auth(*relay, dave.access_token));

  // A group call rings every member.
  SEND(a1, Signal("call_invite", group, "g-1", "\"media\":\"audio\""));
  Expect(b1, "call_invite", "g-1", alice, "bob");
  Expect(c1, "call_invite", "g-1", alice, "carol");
  Expect(a2, "call_invite", "g-1", alice, "alice 2");
  ExpectNone(d1, "call_invite", "g-1", "dave (no member)");

  // bob answers the caller only: alice's devices and bob's own, not carol.
  SEND(b1, Signal("call_answer", group, "g-1", "\"sdp\":\"v=0\",\"to_user_id\":\"" + alice.user_id + "\""));
  Json ans = Expect(a1, "call_answer", "g-1", bob, "alice 1");
  CHECK(ans.Str("to_user_id") == alice.user_id);
  Expect(a2, "call_answer", "g-1", bob, "alice 2");
  ExpectNone(c1, "call_answer", "g-1", "carol (not addressed)");
  ExpectNone(b1, "call_answer", "g-1", "bob 1 (the sender)");
  // An addressed ICE candidate likewise.
  SEND(a1, Signal("call_ice", group, "g-1", "\"candidate\":\"c1\",\"to_user_id\":\"" + bob.user_id + "\""));
  Expect(b1, "call_ice", "g-1", alice, "bob");
  Expect(a2, "call_ice", "g-1", alice, "alice 2");
  ExpectNone(c1, "call_ice", "g-1", "carol (not addressed)");

  // In a group, a signal addressed to someone who blocked the sender is refused; the
  // group-wide end still reaches everyone.
  REQUIRE(
      ApiPost(relay->api(), "/blocks", JsonBuilder().Add("user_id", alice.user_id).str(), carol.access_token).status ==
      201);
  ExpectError(a1, Signal("call_invite", group, "g-2", "\"media\":\"audio\",\"to_user_id\":\"" + carol.user_id + "\""),
              "call_invite", "blocked");
  SEND(a1, Signal("call_end", group, "g-1"));
  Expect(b1, "call_end", "g-1", alice, "bob");
  Expect(c1, "call_end", "g-1", alice, "carol");
  ExpectNone(c1, "call_invite", "g-2", "carol");
}

TEST_CASE("calls across federation: alice on A calls bob on C (and on B), answer, ice and end cross back",
          "[integration][calls][federation]") {
  FedChain chain;
  MUST(chain.Start(Options()));
  RelayProcess& A = *chain.a;
  RelayProcess& B = *chain.b;
  RelayProcess& C = *chain.c;
  TestUser alice = MUST(RegisterUser(A, "alice"));
  TestUser bob = MUST(RegisterUser(C, "bob"));
  TestUser carol = MUST(RegisterUser(A, "carol"));
  RequireConverged(chain.all(), 15000);
  WsSession b_on_c = MUST(Auth(C, bob.access_token));
  std::string chat = MUST(CreateChat(A.api(), alice.access_token, "direct", {bob.user_id}));
  REQUIRE(
      b_on_c
          .WaitFor(
              [&](const Json& e) { return e.type() == "chat_created" && StrOf(At(e.root(), "chat.chat_id")) == chat; },
              kFedEventMs)
          .ok());
  RequireConverged(chain.all(), 15000);  // the chat (and its members) are on every relay
  WsSession a1 = MUST(Auth(A, alice.access_token));
  WsSession a_on_b = MUST(Auth(B, SecondDevice(A, alice)));
  WsSession b_on_b = MUST(Auth(B, SecondDevice(C, bob)));
  WsSession c1 = MUST(Auth(A, carol.access_token));

  SEND(a1, Signal("call_invite", chat, "fed-1", "\"media\":\"video\",\"sdp\":\"v=0 offer\""));
  for (auto [s, who] : {Who{&b_on_c, "bob on C"}, Who{&b_on_b, "bob on B"}, Who{&a_on_b, "alice on B"}}) {
    Json ev = Expect(*s, "call_invite", "fed-1", alice, who, kFedEventMs);
    CHECK(ev.Str("chat_id") == chat);
    CHECK(ev.Str("sdp") == "v=0 offer");
    CHECK(ev.Str("media") == "video");
    CHECK(ev.Str("device_id") == a1.auth_ok.Str("device_id"));
  }
  SEND(b_on_c, Signal("call_ringing", chat, "fed-1"));
  Expect(a1, "call_ringing", "fed-1", bob, "alice on A", kFedEventMs);
  SEND(b_on_c, Signal("call_answer", chat, "fed-1", "\"sdp\":\"v=0 answer\""));
  for (auto [s, who] : {Who{&a1, "alice on A"}, Who{&a_on_b, "alice on B"}, Who{&b_on_b, "bob on B"}}) {
    CHECK(Expect(*s, "call_answer", "fed-1", bob, who, kFedEventMs).Str("sdp") == "v=0 answer");
  }
  SEND(a1, Signal("call_ice", chat, "fed-1", "\"candidate\":\"candidate:a\",\"sdp_mid\":\"0\""));
  CHECK(Expect(b_on_c, "call_ice", "fed-1", alice, "bob on C", kFedEventMs).Str("candidate") == "candidate:a");
  SEND(b_on_c, Signal("call_ice", chat, "fed-1", "\"candidate\":\"candidate:b\""));
  CHECK(Expect(a1, "call_ice", "fed-1", bob, "alice on A", kFedEventMs).Str("candidate") == "candidate:b");
  SEND(b_on_c, Signal("call_end", chat, "fed-1", "\"reason\":\"hangup\""));
  CHECK(Expect(a1, "call_end", "fed-1", bob, "alice on A", kFedEventMs).Str("reason") == "hangup");
  Expect(a_on_b, "call_end", "fed-1", bob, "alice on B", kFedEventMs);
  ExpectNone(c1, "call_invite", "fed-1", "carol (no member, on A)");
  ExpectNone(b_on_c, "call_answer", "fed-1", "bob on C (the sender)");

  // Nothing was stored: the logs stay identical and the chat has no history anywhere.
  RequireConverged(chain.all(), 15000);
  RequireIdenticalLogs(chain.all());
  CHECK(RequireIdenticalHistory(chain.all(), alice.access_token, chat).empty());
}

}  // namespace chatd::test
