// Scheduled messages (PROTOCOL.md "POST /chats/{id}/messages with send_at", GET /scheduled,
// DELETE /scheduled/{id}): 202 at once, sent by the relay at send_at (also across a
// restart), listed and cancellable until then; a send refused by then is marked failed.
#include "tests/integration/harness.h"

namespace chatd::test {
namespace {

// The scheduler's list as scheduled_id → entry.
std::map<std::string, Json> ScheduledList(const HostPort& api, const std::string& token) {
  HttpResponse r = ApiGet(api, "/scheduled", token);
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  std::map<std::string, Json> out;
  const auto& list = Get(r.data(), "scheduled");
  REQUIRE(list.IsArray());
  for (const auto& e : list.GetArray()) out[StrOf(Get(e, "scheduled_id"))] = Json::FromValue(e);
  return out;
}

HttpResponse Schedule(const HostPort& api, const std::string& token, const std::string& chat,
                      const std::string& content, int64_t send_at_ms) {
  return ApiPost(api, "/chats/" + chat + "/messages",
                 JsonBuilder().Add("content", content).Add("send_at", Rfc3339Ms(send_at_ms)).str(), token);
}

// The scheduled entry's status once it is no longer pending (or "pending" at the deadline).
std::string WaitDone(const HostPort& api, const std::string& token, const std::string& id, int ms) {
  std::string status = "pending";
  WaitFor(
      [&] {
        auto list = ScheduledList(api, token);
        status = list.count(id) ? list[id].Str("status") : "missing";
        return status != "pending";
      },
      ms, 100);
  return status;
}

}  // namespace

TEST_CASE("scheduled messages: 202, listed, sent at send_at to every member, cancellable", "[integration][scheduled]") {
  auto relay = StartRelay();
  const HostPort& api = relay->api();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  TestUser eve = MUST(RegisterUser(*relay, "eve"));
  std::string chat = MUST(CreateChat(api, alice.access_token, "group", {bob.user_id}, "later"));
  WsSession bob_ws = MUST(Auth(*relay, bob.access_token));

  // Bad input changes nothing.
  CheckRestError(Schedule(api, alice.access_token, chat, "too late", NowMs() - 1000), 400, "bad_request");
  CheckRestError(Schedule(api, alice.access_token, chat, "too far", NowMs() + 400LL * 86400 * 1000), 400,
                 "bad_request");
  CheckRestError(ApiPost(api, "/chats/" + chat + "/messages",
                         JsonBuilder().Add("content", "x").Add("send_at", "tomorrow").str(), alice.access_token),
                 400, "bad_request");
  CheckRestError(Schedule(api, eve.access_token, chat, "not mine", NowMs() + 60000), 403, "not_member");
  CheckRestError(Schedule(api, alice.access_token, chat, "", NowMs() + 60000), 400, "bad_request");
  CHECK(ScheduledList(api, alice.access_token).empty());

  const int64_t at = NowMs() + 2000;
  HttpResponse r = Schedule(api, alice.access_token, chat, "good morning ☀", at);
  INFO(r.Describe());
  REQUIRE(r.status == 202);
  const std::string id = StrOf(Get(r.data(), "scheduled_id"));
  CHECK(IsDecimalId(Get(r.data(), "scheduled_id")));
  CHECK(StrOf(Get(r.data(), "send_at")) == Rfc3339Ms(at));
  CHECK(StrOf(Get(r.data(), "status")) == "pending");
  CHECK(Get(r.data(), "message_id").IsNull());
  // A second one, cancelled before it is due.
  HttpResponse later = Schedule(api, alice.access_token, chat, "never sent", NowMs() + 60000);
  REQUIRE(later.status == 202);
  const std::string later_id = StrOf(Get(later.data(), "scheduled_id"));
  {
    auto list = ScheduledList(api, alice.access_token);
    REQUIRE(list.size() == 2);
    CHECK(list[id].Str("content") == "good morning ☀");
    CHECK(list[id].Str("chat_id") == chat);
    CHECK(ScheduledList(api, bob.access_token).empty());  // only mine
  }
  CheckRestError(ApiDelete(api, "/scheduled/" + later_id, bob.access_token), 404, "not_found");
  CHECK(ApiDelete(api, "/scheduled/" + later_id, alice.access_token).status == 204);
  CheckRestError(ApiDelete(api, "/scheduled/" + later_id, alice.access_token), 404, "not_found");
  CHECK(MUST(History(api, bob.access_token, chat)).empty());  // not before send_at

  auto ev = bob_ws.WaitFor(
      [](const Json& e) {
        return e.type() == "new_message" && StrOf(At(e.root(), "message.content")) == "good morning ☀";
      },
      15000);
  INFO("the scheduled message never arrived: " << ev.status().message());
  REQUIRE(ev.ok());
  auto sent_at = ParseRfc3339Ms(StrOf(At(ev->root(), "message.created_at")));
  REQUIRE(sent_at.has_value());
  CHECK(*sent_at >= at);  // not early
  CHECK(StrOf(At(ev->root(), "message.sender_id")) == alice.user_id);
  CHECK(WaitDone(api, alice.access_token, id, 5000) == "sent");
  auto list = ScheduledList(api, alice.access_token);
  CHECK(list[id].Str("message_id") == StrOf(At(ev->root(), "message.message_id")));
  CHECK(list.count(later_id) == 0);  // cancelled ones are not listed
  CheckRestError(ApiDelete(api, "/scheduled/" + id, alice.access_token), 409, "conflict");
  std::vector<Json> hist = MUST(History(api, alice.access_token, chat));
  REQUIRE(hist.size() == 1);  // sent once
  CHECK(hist[0].Str("content") == "good morning ☀");

  // The WebSocket does not schedule: it refuses rather than send at once.
  WsSession alice_ws = MUST(Auth(*relay, alice.access_token));
  SEND(alice_ws, JsonBuilder()
                     .Add("type", "send_message")
                     .Add("chat_id", chat)
                     .Add("content", "ws later")
                     .Add("temp_id", "s1")
                     .Add("send_at", Rfc3339Ms(NowMs() + 60000))
                     .str());
  auto err = alice_ws.WaitForAny({"message_sent", "error"}, kEventMs);
  REQUIRE(err.ok());
  CHECK(err->Str("code") == "unsupported");
}

TEST_CASE("scheduled messages: sent after a restart when due meanwhile, failed if the sender left",
          "[integration][scheduled]") {
  auto relay = StartRelay();
  const HostPort& api = relay->api();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  std::string chat = MUST(CreateChat(api, alice.access_token, "group", {bob.user_id}, "restart"));

  const int64_t due = NowMs() + 1500;
  HttpResponse kept = Schedule(api, alice.access_token, chat, "survives a restart", due);
  REQUIRE(kept.status == 202);
  HttpResponse doomed = Schedule(api, bob.access_token, chat, "bob will have left", due);
  REQUIRE(doomed.status == 202);
  // bob leaves before his message is due.
  REQUIRE(ApiDelete(api, "/chats/" + chat + "/members/" + bob.user_id, bob.access_token).status == 204);
  MUST(relay->Stop());
  // Down past send_at: the relay sends it once it is back.
  REQUIRE(WaitFor([&] { return NowMs() > due + 200; }, 5000));
  MUST(relay->Start());
  const std::string kept_id = StrOf(Get(kept.data(), "scheduled_id"));
  CHECK(WaitDone(api, alice.access_token, kept_id, 15000) == "sent");
  std::vector<Json> hist = MUST(History(api, alice.access_token, chat));
  REQUIRE(hist.size() == 1);
  CHECK(hist[0].Str("content") == "survives a restart");
  const std::string doomed_id = StrOf(Get(doomed.data(), "scheduled_id"));
  CHECK(WaitDone(api, bob.access_token, doomed_id, 15000) == "failed");
  auto bobs = ScheduledList(api, bob.access_token);
  CHECK(bobs[doomed_id].Str("error").find("not_member") != std::string::npos);
  CHECK(bobs[doomed_id].root()["message_id"].IsNull());
}

}  // namespace chatd::test
