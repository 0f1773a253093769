// Sync: a device that was away sends `sync {cursor}` and gets exactly what it missed,
// then `sync_done {cursor}` (PROTOCOL.md "WebSocket").
#include "tests/integration/harness.h"

namespace chatd::test {
namespace {

struct SyncResult {
  std::vector<Json> events;  // everything between the sync request and sync_done
  Json done;
};

// Sends sync from `cursor_json` (raw JSON) and collects events up to sync_done.
SyncResult DoSync(WsSession& s, const std::string& cursor_json) {
  SEND(s, JsonBuilder().Add("type", "sync").Raw("cursor", cursor_json).str());
  SyncResult out;
  for (;;) {
    auto ev = s.Next(kEventMs);
    if (!ev.ok()) FAIL("sync from " << cursor_json << ": " << ev.status().message());
    if (ev->type() == "sync_done") {
      out.done = std::move(ev).value();
      return out;
    }
    if (ev->type() == "error") FAIL("sync answered " << ev->text());
    out.events.push_back(std::move(ev).value());
  }
}

std::vector<std::string> NewMessageIds(const std::vector<Json>& events) {
  std::vector<std::string> ids;
  for (const auto& e : events) {
    if (e.type() == "new_message") ids.push_back(StrOf(At(e.root(), "message.message_id")));
  }
  return ids;
}

std::string Types(const std::vector<Json>& events) {
  std::string t;
  for (const auto& e : events) t += e.type() + " ";
  return t;
}

}  // namespace

TEST_CASE("sync after a reconnect delivers exactly the missed messages, once", "[integration][sync][ws]") {
  auto relay = StartRelay();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  std::string chat = MUST(CreateChat(relay->api(), alice.access_token, "direct", {bob.user_id}));

  WsSession dev = MUST(Auth(*relay, alice.access_token));
  std::string m0 = MUST(PostText(relay->api(), bob.access_token, chat, "seen live")).Str("message_id");
  auto live = dev.WaitFor("new_message", kEventMs);
  REQUIRE(live.ok());
  CHECK(StrOf(At(live->root(), "message.message_id")) == m0);
  REQUIRE_FALSE((*live)["cursor"].IsNull());
  std::string cursor = Dump((*live)["cursor"]);

  // The device goes away (clean close); bob writes five messages meanwhile.
  (void)dev.ws().Close(1000, "bye");
  std::vector<std::string> missed;
  for (int i = 0; i < 5; ++i) {
    missed.push_back(MUST(PostText(relay->api(), bob.access_token, chat, "missed " + std::to_string(i))).Str("message_id"));
  }

  WsSession back = MUST(Auth(*relay, alice.access_token));
  SyncResult sync = DoSync(back, cursor);
  std::string got;
  for (const auto& e : sync.events) got += e.type() + " " + StrOf(At(e.root(), "message.message_id")) + "@" + Dump(e["cursor"]) + ", ";
  INFO("auth_ok " << back.auth_ok.text() << "; sync from " << cursor << " gave: " << got << "then " << sync.done.text());
  // Exactly the five, in order, each once, nothing else (nothing else happened).
  CHECK(NewMessageIds(sync.events) == missed);
  CHECK(sync.events.size() == missed.size());
  for (const auto& e : sync.events) {
    INFO(e.text());
    CHECK(StrOf(At(e.root(), "message.chat_id")) == chat);
    CHECK_FALSE(e["cursor"].IsNull());
  }
  REQUIRE_FALSE(sync.done["cursor"].IsNull());
  std::string done_cursor = Dump(sync.done["cursor"]);
  if (!sync.events.empty()) CHECK(done_cursor == Dump(sync.events.back()["cursor"]));

  // Syncing again from sync_done's cursor: nothing.
  SyncResult again = DoSync(back, done_cursor);
  INFO("second sync events: " << Types(again.events));
  CHECK(again.events.empty());

  // A message after the sync arrives live, once.
  std::string m6 = MUST(PostText(relay->api(), bob.access_token, chat, "after")).Str("message_id");
  auto ev = back.WaitFor("new_message", kEventMs);
  REQUIRE(ev.ok());
  CHECK(StrOf(At(ev->root(), "message.message_id")) == m6);
  REQUIRE(back.Barrier().ok());
  CHECK(back.CountPending("new_message") == 0);
}

TEST_CASE("sync from the auth_ok cursor after the device vanished", "[integration][sync][ws]") {
  auto relay = StartRelay();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  std::string chat = MUST(CreateChat(relay->api(), alice.access_token, "group", {bob.user_id}, "g"));
  std::string before = MUST(PostText(relay->api(), bob.access_token, chat, "old")).Str("message_id");

  WsSession dev = MUST(Auth(*relay, alice.access_token));
  REQUIRE_FALSE(dev.last_cursor().empty());
  // "old" is not necessarily covered by the auth_ok cursor: delivery follows the REST
  // answer, so it may arrive live after auth_ok, or come with the next sync. Either way
  // the device must get it at most once. It syncs from the last cursor it saw.
  REQUIRE(dev.Barrier().ok());
  std::string cursor = dev.last_cursor();
  std::vector<Json> live(dev.pending().begin(), dev.pending().end());
  std::string seen_live;
  for (const auto& ev : live) seen_live += ev.text() + " ";
  INFO("auth_ok: " << dev.auth_ok.text() << "; seen live before vanishing: " << seen_live);
  // Vanish without a close frame (a phone losing its network).
  dev.ws().Abort();

  // bob writes over his own socket.
  WsSession bws = MUST(Auth(*relay, bob.access_token));
  std::vector<std::string> missed = SendPipelined(bws, chat, {"one", "two", "three"});

  WsSession back = MUST(Auth(*relay, alice.access_token));
  SyncResult sync = DoSync(back, cursor);
  std::string got;
  for (const auto& e : sync.events) got += StrOf(At(e.root(), "message.message_id")) + "@" + Dump(e["cursor"]) + " ";
  INFO("sync from " << cursor << " gave: " << got << " then " << sync.done.text());
  auto ids = NewMessageIds(sync.events);
  CHECK(sync.events.size() == ids.size());  // only messages happened
  auto live_ids = NewMessageIds(live);
  CHECK(std::count(live_ids.begin(), live_ids.end(), before) +
            std::count(ids.begin(), ids.end(), before) <= 1);
  std::vector<std::string> without_old;
  for (const auto& id : ids) {
    if (id != before) without_old.push_back(id);
  }
  CHECK(without_old == missed);  // each missed message once, in order
  CHECK_FALSE(sync.done["cursor"].IsNull());
}

TEST_CASE("sync replays contact requests and decisions to the other user too, and a profile change to its owner",
          "[integration][sync][ws][social]") {
  auto relay = StartRelay();
  const HostPort& api = relay->api();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  WsSession bob_dev = MUST(Auth(*relay, bob.access_token));
  MUST(bob_dev.Barrier());
  std::string cursor = bob_dev.last_cursor();
  REQUIRE_FALSE(cursor.empty());
  (void)bob_dev.ws().Close();

  // While bob is away: alice asks, bob accepts from another device, alice removes him;
  // bob changes his profile.
  HttpResponse rq =
      ApiPost(api, "/contacts/requests", JsonBuilder().Add("user_id", bob.user_id).str(), alice.access_token);
  REQUIRE(rq.status == 201);
  std::string request_id = StrOf(Get(rq.data(), "request_id"));
  REQUIRE(ApiPost(api, "/contacts/requests/" + request_id + "/accept", "{}", bob.access_token).status == 200);
  REQUIRE(ApiDelete(api, "/contacts/" + bob.user_id, alice.access_token).status == 204);
  REQUIRE(ApiPatch(api, "/users/me", JsonBuilder().Add("status_message", "back soon").str(), bob.access_token).status ==
          200);

  WsSession back = MUST(Auth(*relay, bob.access_token));
  SyncResult sync = DoSync(back, cursor);
  INFO("sync gave: " << Types(sync.events));
  std::vector<std::string> types;
  for (const auto& e : sync.events) types.push_back(e.type());
  CHECK(types ==
        std::vector<std::string>{"contact_request", "contact_request_updated", "contact_removed", "profile_updated"});
  REQUIRE(sync.events.size() == 4);
  CHECK(sync.events[0].Str("request_id") == request_id);
  CHECK(sync.events[1].Str("status") == "accepted");
  CHECK(sync.events[2].Str("by") == alice.user_id);
  CHECK(StrOf(At(sync.events[3]["user"], "status_message")) == "back soon");
  // alice, who made the request and the removal, gets her own events and bob's accept.
  WsSession alice_dev = MUST(Auth(*relay, alice.access_token));
  SyncResult hers = DoSync(alice_dev, "0");
  INFO("alice's sync gave: " << Types(hers.events));
  CHECK(Types(hers.events) == "contact_request contact_request_updated contact_removed ");
}

}  // namespace chatd::test
