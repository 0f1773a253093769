// Federation over a chain A – B – C of real relays (tests/support/fed_chain.h): a message,
// an edit, a reaction and a delete made on A reach a WebSocket client on C (through B,
// by gossip), replies travel back, and afterwards the three logs are identical (same
// (origin, seq, header hash) set, same per-chat history on every relay). A user of A can
// use B's gateway with A's token and chat with a user on C.
#include "tests/integration/harness.h"
#include "tests/support/fed_chain.h"
#include "tests/support/fed_checks.h"

namespace chatd::test {

TEST_CASE("federation chain: post, edit, react, delete travel A→B→C and back, logs identical",
          "[integration][federation]") {
  FedChain chain;
  MUST(chain.Start(Options()));
  RelayProcess& A = *chain.a;
  RelayProcess& C = *chain.c;

  TestUser alice = MUST(RegisterUser(A, "alice"));
  TestUser carol = MUST(RegisterUser(C, "carol"));
  // Both users exist everywhere before anyone refers to them.
  RequireConverged(chain.all(), 15000);
  for (const RelayProcess* r : chain.all()) {
    INFO("user lookups on " << r->name());
    HttpResponse u1 = ApiGet(r->api(), "/users/" + carol.user_id, alice.access_token);
    CHECK(u1.status == 200);
    HttpResponse u2 = ApiGet(r->api(), "/users/" + alice.user_id, carol.access_token);
    CHECK(u2.status == 200);
  }

  WsSession wa = MUST(Auth(A, alice.access_token));
  WsSession wc = MUST(Auth(C, carol.access_token));
  CHECK(wc.auth_ok.Str("relay") == C.name());

  // A chat created on A shows up at carol's session on C.
  std::string chat = MUST(CreateChat(A.api(), alice.access_token, "direct", {carol.user_id}));
  {
    auto ev = wc.WaitFor([&](const Json& e) { return e.type() == "chat_created" && StrOf(At(e.root(), "chat.chat_id")) == chat; },
                         kFedEventMs);
    INFO("chat_created on C: " << (ev.ok() ? ev->text() : ev.status().message()));
    CHECK(ev.ok());
  }

  // A post on A reaches C.
  Json sent = SendAndAck(wa, chat, "hello from eu1", "fa-1");
  std::string m1 = sent.Str("message_id");
  {
    auto ev = wc.WaitFor([&](const Json& e) { return e.type() == "new_message" && StrOf(At(e.root(), "message.message_id")) == m1; },
                         kFedEventMs);
    REQUIRE_MSG(ev.ok(), "new_message on C: " << ev.status().message());
    CHECK(StrOf(At(ev->root(), "message.content")) == "hello from eu1");
    CHECK(StrOf(At(ev->root(), "message.sender_id")) == alice.user_id);
    CHECK(StrOf(At(ev->root(), "message.chat_id")) == chat);
  }

  // An edit on A reaches C.
  SEND(wa, JsonBuilder().Add("type", "edit_message").Add("chat_id", chat).Add("message_id", m1)
               .Add("content", "hello from eu1 (edited)").str());
  REQUIRE(wa.WaitForAny({"edit_ok", "error"}, kEventMs)->type() == "edit_ok");
  {
    auto ev = wc.WaitFor([&](const Json& e) { return e.type() == "message_edited" && e.Str("message_id") == m1; }, kFedEventMs);
    REQUIRE_MSG(ev.ok(), "message_edited on C: " << ev.status().message());
    CHECK(ev->Str("content") == "hello from eu1 (edited)");
    CHECK(ev->Str("user_id") == alice.user_id);
  }

  // A reaction on C reaches A; a reaction on A reaches C.
  SEND(wc, JsonBuilder().Add("type", "react").Add("chat_id", chat).Add("message_id", m1)
               .Add("reaction_type", "👍").str());
  REQUIRE(wc.WaitForAny({"react_ok", "error"}, kEventMs)->type() == "react_ok");
  {
    auto ev = wa.WaitFor([&](const Json& e) { return e.type() == "reaction_updated" && e.Str("user_id") == carol.user_id; },
                         kFedEventMs);
    REQUIRE_MSG(ev.ok(), "reaction_updated on A: " << ev.status().message());
    CHECK(ev->Str("message_id") == m1);
    CHECK(ev->Str("reaction_type") == "👍");
    CHECK(ev->Str("op") == "add");
  }
  SEND(wa, JsonBuilder().Add("type", "react").Add("chat_id", chat).Add("message_id", m1)
               .Add("reaction_type", "🎉").str());
  REQUIRE(wa.WaitForAny({"react_ok", "error"}, kEventMs)->type() == "react_ok");
  {
    auto ev = wc.WaitFor([&](const Json& e) { return e.type() == "reaction_updated" && e.Str("user_id") == alice.user_id; },
                         kFedEventMs);
    REQUIRE_MSG(ev.ok(), "reaction_updated on C: " << ev.status().message());
    CHECK(ev->Str("reaction_type") == "🎉");
  }

  // A reply from C reaches A.
  Json reply = SendAndAck(wc, chat, "hi from ap1", "fc-1");
  {
    auto ev = wa.WaitFor([&](const Json& e) {
      return e.type() == "new_message" && StrOf(At(e.root(), "message.message_id")) == reply.Str("message_id");
    }, kFedEventMs);
    REQUIRE_MSG(ev.ok(), "new_message on A: " << ev.status().message());
    CHECK(StrOf(At(ev->root(), "message.sender_id")) == carol.user_id);
  }

  // A delete on A reaches C.
  Json doomed = SendAndAck(wa, chat, "this one goes away", "fa-2");
  std::string m2 = doomed.Str("message_id");
  REQUIRE(wc.WaitFor([&](const Json& e) { return e.type() == "new_message" && StrOf(At(e.root(), "message.message_id")) == m2; },
                     kFedEventMs).ok());
  SEND(wa, JsonBuilder().Add("type", "delete_message").Add("chat_id", chat).Add("message_id", m2).str());
  REQUIRE(wa.WaitForAny({"delete_ok", "error"}, kEventMs)->type() == "delete_ok");
  {
    auto ev = wc.WaitFor([&](const Json& e) { return e.type() == "message_deleted" && e.Str("message_id") == m2; }, kFedEventMs);
    REQUIRE_MSG(ev.ok(), "message_deleted on C: " << ev.status().message());
    CHECK(ev->Str("user_id") == alice.user_id);
  }

  // Everything converges: identical logs and identical history on A, B and C.
  RequireConverged(chain.all(), 15000);
  RequireIdenticalLogs(chain.all());
  auto hist = RequireIdenticalHistory(chain.all(), alice.access_token, chat);
  REQUIRE(hist.size() == 3);
  // Newest first: m2 (deleted), reply, m1 (edited, two reactions).
  CHECK(hist[0].Str("message_id") == m2);
  CHECK(hist[0]["is_deleted"].IsTrue());
  CHECK(hist[1].Str("message_id") == reply.Str("message_id"));
  CHECK(hist[2].Str("message_id") == m1);
  CHECK(hist[2].Str("content") == "hello from eu1 (edited)");
  CHECK(hist[2]["is_edited"].IsTrue());
  CHECK(hist[2]["reactions"].IsArray());
  CHECK(hist[2]["reactions"].Size() == 2);
  // Every relay indexes what it got from the others for search (in the background): the
  // edited text, not the deleted message.
  auto search = [](const RelayProcess* r, const std::string& token, const std::string& q) {
    auto ids = SearchIds(r->api(), token, q);
    return ids.ok() ? *ids : std::vector<std::string>{"error: " + ids.status().message()};
  };
  for (const RelayProcess* r : chain.all()) {
    INFO("search on " << r->name());
    const std::vector<std::string> want = {m1};
    CHECK(WaitFor([&] { return search(r, carol.access_token, "EU1 edited") == want; }, 10000, 20));
    CHECK(search(r, carol.access_token, "goes away").empty());
    // The reply may stand after the edit in this relay's log: wait for it on its own.
    const std::vector<std::string> want_reply = {reply.Str("message_id")};
    CHECK(WaitFor([&] { return search(r, alice.access_token, "ap1") == want_reply; }, 10000, 20));
  }
  // No session saw one message twice: the first new_message of each was taken above, so
  // after a barrier nothing else may be queued for them.
  REQUIRE(wc.Barrier().ok());
  REQUIRE(wa.Barrier().ok());
  CHECK(CountNewMessage(wc, m1) == 0);
  CHECK(CountNewMessage(wc, m2) == 0);
  CHECK(CountNewMessage(wa, reply.Str("message_id")) == 0);
}

TEST_CASE("federation chain: a user of A on B's gateway (A's token) chats with a user on C",
          "[integration][federation]") {
  FedChain chain;
  MUST(chain.Start(Options()));
  RelayProcess& A = *chain.a;
  RelayProcess& B = *chain.b;
  RelayProcess& C = *chain.c;

  TestUser alice = MUST(RegisterUser(A, "alice"));
  TestUser carol = MUST(RegisterUser(C, "carol"));
  RequireConverged(chain.all(), 15000);

  // A's token is good on B (B pins A's key): REST and WebSocket.
  HttpResponse me = ApiGet(B.api(), "/users/me", alice.access_token);
  INFO(me.Describe());
  REQUIRE(me.status == 200);
  CHECK(StrOf(Get(me.data(), "user_id")) == alice.user_id);
  WsSession wb = MUST(Auth(B, alice.access_token));
  CHECK(wb.user_id == alice.user_id);
  CHECK(wb.auth_ok.Str("relay") == A.name());  // auth_ok names the user's home relay
  WsSession wc = MUST(Auth(C, carol.access_token));

  // The chat is created through B's REST API with A's token.
  std::string chat = MUST(CreateChat(B.api(), alice.access_token, "direct", {carol.user_id}));
  REQUIRE(wc.WaitFor([&](const Json& e) { return e.type() == "chat_created" && StrOf(At(e.root(), "chat.chat_id")) == chat; },
                     kFedEventMs).ok());

  // alice (on B) → carol (on C).
  Json a1 = SendAndAck(wb, chat, "alice via us1", "b-1");
  {
    auto ev = wc.WaitFor([&](const Json& e) {
      return e.type() == "new_message" && StrOf(At(e.root(), "message.message_id")) == a1.Str("message_id");
    }, kFedEventMs);
    REQUIRE_MSG(ev.ok(), "new_message on C: " << ev.status().message());
    CHECK(StrOf(At(ev->root(), "message.sender_id")) == alice.user_id);
    CHECK(StrOf(At(ev->root(), "message.content")) == "alice via us1");
  }
  // carol (on C) → alice (on B).
  Json c1 = SendAndAck(wc, chat, "carol from ap1", "c-1");
  {
    auto ev = wb.WaitFor([&](const Json& e) {
      return e.type() == "new_message" && StrOf(At(e.root(), "message.message_id")) == c1.Str("message_id");
    }, kFedEventMs);
    REQUIRE_MSG(ev.ok(), "new_message on B: " << ev.status().message());
    CHECK(StrOf(At(ev->root(), "message.sender_id")) == carol.user_id);
  }
  // And alice's home relay A has the whole conversation too.
  RequireConverged(chain.all(), 15000);
  RequireIdenticalLogs(chain.all());
  auto hist = RequireIdenticalHistory(chain.all(), alice.access_token, chat);
  REQUIRE(hist.size() == 2);
  CHECK(hist[0].Str("message_id") == c1.Str("message_id"));
  CHECK(hist[1].Str("message_id") == a1.Str("message_id"));
}

}  // namespace chatd::test
