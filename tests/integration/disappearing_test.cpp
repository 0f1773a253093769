// Disappearing messages (PROTOCOL.md "PATCH /chats/{id}" disappearing_seconds; docs/API.md
// "Disappearing messages"): a message sent while a chat's timer is on carries expires_at,
// is never added to the search index, and at expires_at vanishes from history and from
// every relay's log (body and salt erased, the signed header kept, so logs stay identical).
// Messages sent before the timer was set, or after it was turned off, stay.
#include "tests/integration/harness.h"
#include "tests/support/fed_chain.h"
#include "tests/support/fed_checks.h"

namespace chatd::test {
namespace {

constexpr int kTimerS = 2;
// A due message is erased by the next once-a-second sweep; generous for a loaded machine.
constexpr int kGoneMs = 15000;

void SetTimer(const HostPort& api, const std::string& token, const std::string& chat, int seconds) {
  HttpResponse r = ApiPatch(api, "/chats/" + chat, JsonBuilder().Add("disappearing_seconds", seconds).str(), token);
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  CHECK(Get(r.data(), "disappearing_seconds").GetInt64() == seconds);
}

std::set<std::string> HistoryIds(const HostPort& api, const std::string& token, const std::string& chat) {
  std::set<std::string> ids;
  for (const Json& m : MUST(History(api, token, chat))) ids.insert(m.Str("message_id"));
  return ids;
}

// The log row of the envelope with this id on a relay (REQUIREs it exists).
LogRow RowOf(const RelayProcess& relay, const std::string& id) {
  for (const LogRow& r : MUST(ReadEnvelopeLog(relay.dir() + "/chatd.db"))) {
    if (r.id == IdNum(id)) return r;
  }
  FAIL("no envelope " << id << " in " << relay.name() << "'s log");
  return {};
}

// Envelopes of this kind in a relay's log whose body names this message.
size_t BodiesNaming(const RelayProcess& relay, int kind, const std::string& message_id) {
  size_t n = 0;
  for (const LogRow& r : MUST(ReadEnvelopeLog(relay.dir() + "/chatd.db"))) {
    if (r.kind == kind && r.body.find(message_id) != std::string::npos) ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("disappearing messages: one deleted for everyone leaves its tombstone only until its time",
          "[integration][disappearing]") {
  auto relay = StartRelay();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  std::string chat = MUST(CreateChat(relay->api(), alice.access_token, "group", {bob.user_id}, "vanishing"));
  Json kept = MUST(PostText(relay->api(), alice.access_token, chat, "before the timer"));
  SetTimer(relay->api(), alice.access_token, chat, kTimerS);
  Json posted = MUST(PostText(relay->api(), alice.access_token, chat, "said and unsaid"));
  const std::string m = posted.Str("message_id");
  REQUIRE(ApiDelete(relay->api(), "/chats/" + chat + "/messages/" + m, alice.access_token).status == 204);
  // The tombstone shows, with the message's time, until then.
  bool tomb = false;
  for (const Json& shown : MUST(History(relay->api(), bob.access_token, chat))) {
    if (shown.Str("message_id") != m) continue;
    tomb = true;
    CHECK(shown.root()["is_deleted"].IsTrue());
    CHECK(shown.Str("expires_at") == posted.Str("expires_at"));
  }
  REQUIRE(tomb);
  CHECK(BodiesNaming(*relay, 22, m) == 1);  // the delete names it

  // Then it goes: from history, and the delete's body (which named the message) from the log.
  REQUIRE_MSG(WaitFor([&] { return !HistoryIds(relay->api(), bob.access_token, chat).count(m); }, kGoneMs),
              "the tombstone outlived its message's time");
  REQUIRE(WaitFor([&] { return BodiesNaming(*relay, 22, m) == 0; }, kGoneMs));
  CHECK(HistoryIds(relay->api(), bob.access_token, chat) == std::set<std::string>{kept.Str("message_id")});

  // The views equal a rebuild from the erased log, and a restart shows the same.
  MUST(relay->Stop());
  CommandResult verify = Chatctl(CHATCTL_BIN, *relay, {"store", "verify"});
  INFO(verify.out << verify.err);
  CHECK(verify.exit_code == 0);
  MUST(relay->Start());
  CHECK(HistoryIds(relay->api(), bob.access_token, chat) == std::set<std::string>{kept.Str("message_id")});
}

TEST_CASE(
    "disappearing messages: expires_at, not searchable, gone from history and the log in time, "
    "older and later messages stay",
    "[integration][disappearing]") {
  auto relay = StartRelay();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  std::string chat = MUST(CreateChat(relay->api(), alice.access_token, "group", {bob.user_id}, "vanishing"));
  WsSession wa = MUST(Auth(*relay, alice.access_token));
  WsSession wb = MUST(Auth(*relay, bob.access_token));

  Json before = MUST(PostText(relay->api(), alice.access_token, chat, "kept from before the timer"));
  CHECK_FALSE(before.root().HasMember("expires_at"));

  // Only an admin sets the timer; bad values change nothing.
  CheckRestError(
      ApiPatch(relay->api(), "/chats/" + chat, JsonBuilder().Add("disappearing_seconds", 5).str(), bob.access_token),
      403, "");
  CheckRestError(
      ApiPatch(relay->api(), "/chats/" + chat, JsonBuilder().Add("disappearing_seconds", -1).str(), alice.access_token),
      400, "bad_request");
  SetTimer(relay->api(), alice.access_token, chat, kTimerS);

  // Over the WebSocket: message_sent and bob's new_message carry expires_at = created_at + timer.
  Json sent = SendAndAck(wa, chat, "zebracorn over the socket", "d-1");
  std::string m1 = sent.Str("message_id");
  auto created = ParseRfc3339Ms(sent.Str("created_at"));
  auto expires = ParseRfc3339Ms(sent.Str("expires_at"));
  REQUIRE(created);
  REQUIRE(expires);
  CHECK(*expires - *created == kTimerS * 1000);
  {
    auto ev = wb.WaitFor(
        [&](const Json& e) { return e.type() == "new_message" && StrOf(At(e.root(), "message.message_id")) == m1; },
        kEventMs);
    REQUIRE_MSG(ev.ok(), "bob's new_message: " << ev.status().message());
    CHECK(StrOf(At(ev->root(), "message.expires_at")) == sent.Str("expires_at"));
  }
  // Over REST: the 201 carries it too; history shows both with it.
  Json posted = MUST(PostText(relay->api(), alice.access_token, chat, "zebracorn over rest"));
  std::string m2 = posted.Str("message_id");
  CHECK(posted.root().HasMember("expires_at"));
  // An edit of a disappearing message is allowed; its new text disappears with it.
  SEND(wa, JsonBuilder()
               .Add("type", "edit_message")
               .Add("chat_id", chat)
               .Add("message_id", m1)
               .Add("content", "zebracorn edited")
               .str());
  REQUIRE(wa.WaitForAny({"edit_ok", "error"}, kEventMs)->type() == "edit_ok");
  {
    auto hist = MUST(History(relay->api(), bob.access_token, chat));
    size_t with_expiry = 0;
    for (const Json& m : hist) with_expiry += m.root().HasMember("expires_at") ? 1 : 0;
    CHECK(hist.size() == 3);
    CHECK(with_expiry == 2);
  }
  CHECK(BodiesNaming(*relay, 21, m1) == 1);

  // Turned off again: a later message stays. It is indexed after the two disappearing ones
  // (log order), so once it is searchable the indexer has passed them: they were skipped.
  SetTimer(relay->api(), alice.access_token, chat, 0);
  Json after = MUST(PostText(relay->api(), alice.access_token, chat, "zebracorn kept after the timer"));
  std::string m3 = after.Str("message_id");
  CHECK_FALSE(after.root().HasMember("expires_at"));
  REQUIRE_MSG(WaitFor(
                  [&] {
                    auto ids = SearchIds(relay->api(), bob.access_token, "zebracorn");
                    return ids.ok() && ids->size() == 1;
                  },
                  10000),
              "the later message never became searchable");
  CHECK(MUST(SearchIds(relay->api(), bob.access_token, "zebracorn")) == std::vector<std::string>{m3});

  // Due: gone from history (both users), and their bodies gone from the log.
  bool gone = WaitFor(
      [&] {
        auto ids = HistoryIds(relay->api(), bob.access_token, chat);
        return !ids.count(m1) && !ids.count(m2);
      },
      kGoneMs);
  REQUIRE_MSG(gone, "the disappearing messages were still in history after " << kGoneMs << " ms");
  std::set<std::string> left = HistoryIds(relay->api(), alice.access_token, chat);
  CHECK(left == std::set<std::string>{before.Str("message_id"), m3});
  REQUIRE(WaitFor([&] { return RowOf(*relay, m1).body.empty() && RowOf(*relay, m2).body.empty(); }, kGoneMs));
  CHECK(BodiesNaming(*relay, 21, m1) == 0);  // the edit's text went too
  CHECK_FALSE(RowOf(*relay, before.Str("message_id")).body.empty());
  CHECK_FALSE(RowOf(*relay, m3).body.empty());
  CHECK(MUST(MetricValue(*relay, "chatd_expired_total")) == 3);  // two posts and an edit

  // What is gone cannot be replied to, edited or reacted to.
  HttpResponse reply =
      ApiPost(relay->api(), "/chats/" + chat + "/messages",
              JsonBuilder().Add("message_type", "text").Add("content", "re").Add("reply_to_message_id", m2).str(),
              bob.access_token);
  CheckRestError(reply, 404, "");
  SEND(wb,
       JsonBuilder().Add("type", "react").Add("chat_id", chat).Add("message_id", m1).Add("reaction_type", "👍").str());
  auto react = wb.WaitForAny({"react_ok", "error"}, kEventMs);
  REQUIRE(react.ok());
  CHECK(react->type() == "error");

  // A restart keeps it so (the views come from the erased log).
  MUST(relay->Stop());
  MUST(relay->Start());
  CHECK(HistoryIds(relay->api(), alice.access_token, chat) == left);
}

TEST_CASE(
    "disappearing messages across federation: every relay shows expires_at, then erases the same "
    "envelopes, logs stay identical",
    "[integration][disappearing][federation]") {
  FedChain chain;
  MUST(chain.Start(Options()));
  RelayProcess& A = *chain.a;
  RelayProcess& C = *chain.c;
  TestUser alice = MUST(RegisterUser(A, "alice"));
  TestUser carol = MUST(RegisterUser(C, "carol"));
  RequireConverged(chain.all(), 15000);

  std::string chat = MUST(CreateChat(A.api(), alice.access_token, "direct", {carol.user_id}));
  SetTimer(A.api(), alice.access_token, chat, kTimerS);
  WsSession wc = MUST(Auth(C, carol.access_token));
  // The timer set on A applies to carol's message sent on C, once the update reached C.
  REQUIRE(WaitFor(
      [&] {
        HttpResponse r = ApiGet(C.api(), "/chats/" + chat, carol.access_token);
        return r.status == 200 && Get(r.data(), "disappearing_seconds").IsInt64() &&
               Get(r.data(), "disappearing_seconds").GetInt64() == kTimerS;
      },
      kFedEventMs));
  Json from_a = MUST(PostText(A.api(), alice.access_token, chat, "from eu1, vanishing"));
  Json from_c = SendAndAck(wc, chat, "from ap1, vanishing", "c-1");
  CHECK(from_a.root().HasMember("expires_at"));
  CHECK(from_c.root().HasMember("expires_at"));
  {
    auto ev = wc.WaitFor(
        [&](const Json& e) {
          return e.type() == "new_message" && StrOf(At(e.root(), "message.message_id")) == from_a.Str("message_id");
        },
        kFedEventMs);
    REQUIRE_MSG(ev.ok(), "new_message on C: " << ev.status().message());
    CHECK(StrOf(At(ev->root(), "message.expires_at")) == from_a.Str("expires_at"));
  }
  RequireConverged(chain.all(), 15000);

  // On every relay: gone from history, and both bodies erased.
  for (const RelayProcess* r : chain.all()) {
    INFO("relay " << r->name());
    const std::string& token = r == &C ? carol.access_token : alice.access_token;
    CHECK(WaitFor([&] { return HistoryIds(r->api(), token, chat).empty(); }, kGoneMs));
    CHECK(WaitFor(
        [&] {
          return RowOf(*r, from_a.Str("message_id")).body.empty() && RowOf(*r, from_c.Str("message_id")).body.empty();
        },
        kGoneMs));
  }
  // Erasure keeps the signed header: the three logs still hold the same envelopes.
  RequireIdenticalLogs(chain.all());
}

}  // namespace chatd::test
