// The WebSocket protocol's edges: auth first, bad tokens, ping/pong, malformed frames,
// wrong types, missing fields, unknown and foreign chats, oversized frames. Every bad
// frame gets `error {code, message, ref}`, a healthy session stays open, and nothing is
// stored (PROTOCOL.md "WebSocket", DESIGN.md invariant 5).
#include <ctime>

#include "tests/integration/harness.h"

namespace chatd::test {
namespace {

// Expects an `error` event, then a close frame. Returns the error event.
Json ExpectErrorThenClose(WsSession& s) {
  auto err = s.WaitFor("error", kEventMs);
  if (!err.ok()) FAIL("expected an error event before the close: " << err.status().message());
  INFO(err->text());
  CHECK_FALSE(err->Str("code").empty());
  CHECK_FALSE(err->Str("message").empty());
  auto next = s.Next(kEventMs);
  if (next.ok()) FAIL("expected a close after the error, got " << next->text());
  CHECK(s.ws().last_error() == WsError::kClosed);
  INFO("close code " << s.ws().last_close_code() << " reason '" << s.ws().last_close_reason() << "'");
  CHECK(s.ws().last_close_code() != 1006);  // a close frame, not a dropped connection
  return std::move(err).value();
}

// Sends a bad frame and expects an error event (not a close); the session must still
// answer a ping afterwards. Returns the error event.
Json ExpectErrorStaysOpen(WsSession& s, const std::string& frame, const char* what) {
  INFO(what << ": " << frame.substr(0, 200));
  SEND(s, frame);
  auto err = s.WaitFor("error", kEventMs);
  if (!err.ok()) FAIL(what << ": no error event: " << err.status().message());
  INFO(err->text());
  CHECK_FALSE(err->Str("code").empty());
  CHECK_FALSE(err->Str("message").empty());
  Status alive = s.Barrier();
  if (!alive.ok()) FAIL(what << ": session did not survive: " << alive.message());
  return std::move(err).value();
}

std::string SendFrameJson(const std::string& chat_id_json, const std::string& content_json,
                          const std::string& temp_id, const std::string& type_json = "\"text\"") {
  JsonBuilder b;
  b.Add("type", "send_message");
  if (!chat_id_json.empty()) b.Raw("chat_id", chat_id_json);
  if (!type_json.empty()) b.Raw("message_type", type_json);
  if (!content_json.empty()) b.Raw("content", content_json);
  b.Add("temp_id", temp_id);
  return b.str();
}

}  // namespace

TEST_CASE("the first frame must be auth: otherwise error, then close", "[integration][ws]") {
  auto relay = StartRelay();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  std::string chat = MUST(CreateChat(relay->api(), alice.access_token, "group",
                                     {MUST(RegisterUser(*relay, "bob")).user_id}, "g"));
  std::string first;
  SECTION("ping") { first = R"({"type":"ping"})"; }
  SECTION("send_message") { first = SendMessageFrame(chat, "sneaky", "t-1"); }

  WsSession s = MUST(ConnectWs(relay->gateway()));
  SEND(s, first);
  ExpectErrorThenClose(s);
  CHECK(MUST(History(relay->api(), alice.access_token, chat)).empty());
}

TEST_CASE("bad tokens get an error, then close", "[integration][ws][auth]") {
  auto relay = StartRelay();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  PasetoParts real = MUST(SplitPaseto(alice.access_token));
  std::string token_json;
  bool expect_unauthorized = true;

  SECTION("garbage") { token_json = Quote("not-a-token"); }
  SECTION("one character changed") {
    std::string t = alice.access_token;
    size_t i = std::string("v4.public.").size() + 20;
    t[i] = t[i] == 'A' ? 'B' : 'A';
    token_json = Quote(t);
  }
  SECTION("signed by another key") {
    token_json = Quote(ForgePaseto(real.payload, real.footer));
  }
  SECTION("the refresh token") { token_json = Quote(alice.refresh_token); }
  SECTION("expired, signed with the relay's own key") {
    auto claims = MUST(Json::Parse(real.payload));
    INFO("claims: " << claims.text());
    // The relay's key makes a token it accepts...
    std::string key_file = relay->dir() + "/relay.key";
    std::string control = MUST(SignWithKeyFile(key_file, real.payload, real.footer));
    auto ok = Auth(*relay, control);
    if (!ok.ok()) FAIL("a token re-signed with relay.key is refused, so expiry cannot be tested this way: " << ok.status().message());
    // ...and the same claims expired an hour ago are refused.
    rapidjson::Document d;
    d.CopyFrom(claims.root(), d.GetAllocator());
    REQUIRE(d.HasMember("exp"));
    REQUIRE(d["exp"].IsString());
    std::string exp = Rfc3339Ms(NowMs() - 3600 * 1000);
    std::string iat = Rfc3339Ms(NowMs() - 7200 * 1000);
    d["exp"].SetString(exp.c_str(), static_cast<rapidjson::SizeType>(exp.size()), d.GetAllocator());
    if (d.HasMember("iat") && d["iat"].IsString()) {
      d["iat"].SetString(iat.c_str(), static_cast<rapidjson::SizeType>(iat.size()), d.GetAllocator());
    }
    token_json = Quote(MUST(SignWithKeyFile(key_file, Dump(d), real.footer)));
  }
  SECTION("no token") {
    token_json = "";
    expect_unauthorized = false;
  }
  SECTION("token of the wrong type") {
    token_json = "12345";
    expect_unauthorized = false;
  }

  WsSession s = MUST(ConnectWs(relay->gateway()));
  JsonBuilder b;
  b.Add("type", "auth");
  if (!token_json.empty()) b.Raw("token", token_json);
  SEND(s, b.str());
  Json err = ExpectErrorThenClose(s);
  std::string code = err.Str("code");
  if (expect_unauthorized) {
    CHECK(code == "unauthorized");
  } else {
    CHECK((code == "unauthorized" || code == "bad_request"));
  }
  // The genuine token still works.
  CHECK(Auth(*relay, alice.access_token).ok());
}

TEST_CASE("ping gets pong, at both levels", "[integration][ws]") {
  auto relay = StartRelay();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  WsSession s = MUST(Auth(*relay, alice.access_token));
  SEND(s, R"({"type":"ping"})");
  auto pong = s.WaitFor("pong", kEventMs);
  REQUIRE(pong.ok());
  // RFC 6455 ping frame: pong frame with the same payload.
  REQUIRE(s.ws().SendPing("are you there").ok());
  auto p = s.ws().WaitPong(kEventMs);
  REQUIRE(p.ok());
  CHECK(*p == "are you there");
  // Unknown fields are ignored.
  SEND(s, R"({"type":"ping","extra":{"deep":[1,2,3]}})");
  CHECK(s.WaitFor("pong", kEventMs).ok());
}

TEST_CASE("malformed frames get an error and leave the session open", "[integration][ws]") {
  auto relay = StartRelay();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  std::string chat = MUST(CreateChat(relay->api(), alice.access_token, "direct", {bob.user_id}));
  WsSession s = MUST(Auth(*relay, alice.access_token));

  Json e1 = ExpectErrorStaysOpen(s, R"({"type":"send_message","chat_id":)", "truncated JSON");
  CHECK(e1.Str("code") == "bad_request");
  Json e2 = ExpectErrorStaysOpen(s, "hello, is this JSON?", "not JSON");
  CHECK(e2.Str("code") == "bad_request");
  Json e3 = ExpectErrorStaysOpen(s, "[1,2,3]", "array of numbers");
  CHECK(e3.Str("code") == "bad_request");
  Json e4 = ExpectErrorStaysOpen(s, R"({"chat_id":"1","content":"x"})", "no type");
  CHECK(e4.Str("code") == "bad_request");
  Json e5 = ExpectErrorStaysOpen(s, R"({"type":"no_such_thing"})", "unknown type");
  CHECK(e5.Str("ref") == "no_such_thing");

  CHECK(MUST(History(relay->api(), alice.access_token, chat)).empty());
  // Still a working session.
  Json ack = SendAndAck(s, chat, "finally", "ok-1");
  CHECK(MUST(History(relay->api(), bob.access_token, chat)).size() == 1);
}

TEST_CASE("send_message with wrong types or missing fields: error naming the field", "[integration][ws]") {
  auto relay = StartRelay();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  std::string chat = MUST(CreateChat(relay->api(), alice.access_token, "direct", {bob.user_id}));
  WsSession s = MUST(Auth(*relay, alice.access_token));
  WsSession bs = MUST(Auth(*relay, bob.access_token));
  const std::string cid = Quote(chat);

  struct Case {
    const char* what;
    std::string frame;
    const char* field;
    const char* code;
  };
  std::vector<Case> cases = {
      {"chat_id is a bool", SendFrameJson("true", Quote("x"), "w-1"), "chat_id", "bad_request"},
      {"content is a number", SendFrameJson(cid, "123", "w-2"), "content", "bad_request"},
      {"content missing", SendFrameJson(cid, "", "w-3"), "content", "bad_request"},
      {"message_type not a type", SendFrameJson(cid, Quote("x"), "w-4", "7"), "message_type", "bad_request"},
      {"chat_id missing", SendFrameJson("", Quote("x"), "w-5"), "chat_id", "bad_request"},
      {"content over limits.max_content_bytes", SendFrameJson(cid, Quote(std::string(20000, 'y')), "w-6"),
       "content", "too_large"},
  };
  for (const auto& c : cases) {
    Json err = ExpectErrorStaysOpen(s, c.frame, c.what);
    INFO(c.what << " → " << err.text());
    CHECK(err.Str("code") == c.code);
    CHECK(err.Str("message").find(c.field) != std::string::npos);
    // ref echoes the temp_id.
    std::string temp = StrOf(Get(MUST(Json::Parse(c.frame)).root(), "temp_id"));
    CHECK(err.Str("ref") == temp);
  }
  // Nothing was stored, and bob was told nothing.
  CHECK(MUST(History(relay->api(), bob.access_token, chat)).empty());
  REQUIRE(bs.Barrier().ok());
  CHECK(bs.CountPending("new_message") == 0);
  // A correct send on the same session works.
  SendAndAck(s, chat, "good", "w-ok");
  CHECK(MUST(History(relay->api(), bob.access_token, chat)).size() == 1);
}

TEST_CASE("unknown and foreign chats: error, nothing stored, session open", "[integration][ws]") {
  auto relay = StartRelay();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  TestUser carol = MUST(RegisterUser(*relay, "carol"));
  std::string mine = MUST(CreateChat(relay->api(), alice.access_token, "direct", {bob.user_id}));
  std::string foreign = MUST(CreateChat(relay->api(), carol.access_token, "direct", {bob.user_id}));
  WsSession s = MUST(Auth(*relay, alice.access_token));
  WsSession bs = MUST(Auth(*relay, bob.access_token));

  Json unknown = ExpectErrorStaysOpen(s, SendMessageFrame("123456789", "x", "u-1"), "unknown chat id");
  CHECK(unknown.Str("ref") == "u-1");
  CHECK((unknown.Str("code") == "not_found" || unknown.Str("code") == "not_member" ||
         unknown.Str("code") == "forbidden"));
  Json bad = ExpectErrorStaysOpen(s, SendMessageFrame("abc", "x", "u-2"), "non-numeric chat id");
  CHECK(bad.Str("ref") == "u-2");
  CHECK(bad.Str("code") == "bad_request");
  Json theirs = ExpectErrorStaysOpen(s, SendMessageFrame(foreign, "intruder", "u-3"), "foreign chat");
  CHECK(theirs.Str("ref") == "u-3");
  CHECK((theirs.Str("code") == "not_member" || theirs.Str("code") == "forbidden"));

  // join_chat: a member's chat → joined; someone else's → not_member.
  SEND(s, JsonBuilder().Add("type", "join_chat").Add("chat_id", mine).str());
  auto joined = s.WaitForAny({"joined", "error"}, kEventMs);
  REQUIRE(joined.ok());
  INFO(joined->text());
  CHECK(joined->type() == "joined");
  CHECK(joined->Str("chat_id") == mine);
  Json nm = ExpectErrorStaysOpen(s, JsonBuilder().Add("type", "join_chat").Add("chat_id", foreign).str(),
                                 "join_chat foreign");
  CHECK(nm.Str("code") == "not_member");
  CHECK(nm.Str("ref") == "join_chat");
  Json nm2 = ExpectErrorStaysOpen(s, JsonBuilder().Add("type", "join_chat").Add("chat_id", "123456789").str(),
                                  "join_chat unknown");
  CHECK((nm2.Str("code") == "not_member" || nm2.Str("code") == "not_found"));

  // Nothing stored anywhere, nothing delivered to bob; alice still not subscribed to it.
  CHECK(MUST(History(relay->api(), carol.access_token, foreign)).empty());
  CHECK(MUST(History(relay->api(), bob.access_token, mine)).empty());
  REQUIRE(bs.Barrier().ok());
  CHECK(bs.CountPending("new_message") == 0);
  MUST(PostText(relay->api(), carol.access_token, foreign, "private"));
  REQUIRE(bs.WaitFor("new_message", kEventMs).ok());
  REQUIRE(s.Barrier().ok());
  s.Soak(200);
  CHECK(s.CountPending("new_message") == 0);
}

TEST_CASE("a frame over limits.max_frame_bytes gets an error and stores nothing", "[integration][ws]") {
  auto relay = StartRelay();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  std::string chat = MUST(CreateChat(relay->api(), alice.access_token, "direct", {bob.user_id}));
  WsSession s = MUST(Auth(*relay, alice.access_token));
  std::string big = SendMessageFrame(chat, std::string(70000, 'z'), "big-1");  // > 65536
  REQUIRE(big.size() > 65536);

  SECTION("one frame") { SEND(s, big); }
  SECTION("three fragments") {
    size_t third = big.size() / 3;
    REQUIRE(s.ws().SendFrame(WsOpcode::kText, big.substr(0, third), false).ok());
    REQUIRE(s.ws().SendFrame(WsOpcode::kContinuation, big.substr(third, third), false).ok());
    REQUIRE(s.ws().SendFrame(WsOpcode::kContinuation, big.substr(2 * third), true).ok());
  }
  auto err = s.WaitFor("error", kEventMs);
  if (!err.ok()) {
    FAIL("no error event for an oversized frame: " << err.status().message() << " (close code "
                                                   << s.ws().last_close_code() << " '"
                                                   << s.ws().last_close_reason() << "')");
  }
  INFO(err->text());
  CHECK(err->Str("code") == "too_large");
  // PROTOCOL.md: an oversized frame does not close a healthy session unless it repeats.
  Status alive = s.Barrier();
  INFO("close code " << s.ws().last_close_code() << " reason '" << s.ws().last_close_reason() << "'");
  CHECK(alive.ok());
  CHECK(MUST(History(relay->api(), bob.access_token, chat)).empty());
}

}  // namespace chatd::test

namespace chatd::test {

TEST_CASE("a connection that never authenticates is closed after gateway.auth_timeout", "[integration][ws]") {
  RelayOptions opts = Options();
  opts.config.push_back({"gateway", "auth_timeout", "1"});
  auto relay = StartRelay(opts);
  WsSession s = MUST(ConnectWs(relay->gateway()));
  // Whatever the server says first (an error is fine), the connection must end.
  Result<Json> ev = Json();
  do {
    ev = s.Next(10000);
  } while (ev.ok());
  INFO(ev.status().message());
  // Closed well before the 10 s read timeout (a timeout would be kTimeout).
  CHECK(s.ws().last_error() == WsError::kClosed);
}

}  // namespace chatd::test

namespace chatd::test {

TEST_CASE("typing, presence and call frames are rate limited per session, and the session stays", "[integration][ws]") {
  auto relay = StartRelay();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  std::string chat = MUST(CreateChat(relay->api(), alice.access_token, "group", {bob.user_id}, "chatty"));
  WsSession a = MUST(Auth(*relay, alice.access_token));
  WsSession b = MUST(Auth(*relay, bob.access_token));
  const std::string typing = JsonBuilder().Add("type", "typing").Add("chat_id", chat).Add("state", "start").str();
  // 40 at once are fine; 100 in a burst are not: some get rate_limited, with retry_after.
  for (int i = 0; i < 100; ++i) SEND(a, typing);
  auto limited =
      a.WaitFor([](const Json& e) { return e.type() == "error" && e.Str("code") == "rate_limited"; }, kEventMs);
  INFO("waiting for rate_limited: " << limited.status().message());
  REQUIRE(limited.ok());
  CHECK(limited->Str("ref") == "typing");
  CHECK((*limited)["retry_after"].GetInt64() >= 1);
  REQUIRE(a.Barrier().ok());
  CHECK(a.CountPending("error") >= 40);  // the burst allows 40 (plus what refilled meanwhile)
  // The typing events reach bob through the core, in order before this message.
  const std::string marker = SendAndAck(a, chat, "after the burst", "t-0").Str("message_id");
  REQUIRE(b.WaitFor(
               [&](const Json& e) {
                 return e.type() == "new_message" && StrOf(At(e.root(), "message.message_id")) == marker;
               },
               kEventMs)
              .ok());
  const size_t delivered = b.CountPending("user_typing");
  CHECK(delivered >= 40);
  CHECK(delivered <= 80);  // 40 at once, then 20 a second while the burst is read
  // Not a bad frame: the session works, and once tokens come back typing flows again.
  b.ClearPending();
  CHECK(WaitFor(
      [&] {
        SEND(a, typing);
        return b.WaitFor("user_typing", 200).ok();
      },
      5000, 0));
  CHECK(!SendAndAck(a, chat, "still here", "t-1").Str("message_id").empty());
}

}  // namespace chatd::test
