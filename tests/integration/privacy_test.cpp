// Privacy settings ("privacy{…}" in PATCH /users/me, PROTOCOL.md) and presence lists
// (GET /presence): who sees a user's photo, status message, presence and reads, and who
// may add them to groups; on one relay and across a federation, with real relays and a
// real WebSocket client.
#include "tests/integration/harness.h"
#include "tests/support/fed_chain.h"
#include "tests/support/fed_checks.h"

namespace chatd::test {
namespace {

std::string PrivacyBody(const std::string& privacy_json) { return JsonBuilder().Raw("privacy", privacy_json).str(); }

Json Me(const RelayProcess& relay, const std::string& token) {
  HttpResponse r = ApiGet(relay.api(), "/users/me", token);
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  return Json::FromValue(r.data());
}

Json UserAs(const HostPort& api, const std::string& user_id, const std::string& token) {
  HttpResponse r = ApiGet(api, "/users/" + user_id, token);
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  return Json::FromValue(r.data());
}

// GET /presence[?user_ids=…] as `token`: user_id -> status.
std::map<std::string, std::string> PresenceAs(const HostPort& api, const std::string& token,
                                              const std::string& query = "") {
  HttpResponse r = ApiGet(api, "/presence" + query, token);
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  std::map<std::string, std::string> out;
  const auto& list = Get(r.data(), "presence");
  REQUIRE(list.IsArray());
  for (const auto& e : list.GetArray()) {
    std::string status = StrOf(Get(e, "status"));
    const auto& seen = Get(e, "last_seen");
    if (status == "unknown")
      CHECK(seen.IsNull());
    else if (status != "offline")
      CHECK(IsRfc3339Ms(seen));
    out[StrOf(Get(e, "user_id"))] = status;
  }
  return out;
}

// One user's entry in GET /presence?user_ids=<user_id> as `token`: its status and
// last_seen in ms (0 if null).
std::pair<std::string, int64_t> PresenceOfOne(const HostPort& api, const std::string& token,
                                              const std::string& user_id) {
  HttpResponse r = ApiGet(api, "/presence?user_ids=" + user_id, token);
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  const auto& list = Get(r.data(), "presence");
  REQUIRE(list.Size() == 1);
  const auto& seen = Get(list[0], "last_seen");
  if (seen.IsNull()) return {StrOf(Get(list[0], "status")), 0};
  auto ms = ParseRfc3339Ms(StrOf(seen));
  REQUIRE(ms);
  return {StrOf(Get(list[0], "status")), *ms};
}

void MakeContacts(const HostPort& api_a, const TestUser& a, const HostPort& api_b, const TestUser& b) {
  HttpResponse rq = ApiPost(api_a, "/contacts/requests", JsonBuilder().Add("user_id", b.user_id).str(), a.access_token);
  INFO(rq.Describe());
  REQUIRE(rq.status == 201);
  std::string id = StrOf(Get(rq.data(), "request_id"));
  // On a federation the request reaches b's relay a moment later.
  REQUIRE(WaitFor(
      [&] { return ApiPost(api_b, "/contacts/requests/" + id + "/accept", "{}", b.access_token).status == 200; },
      kFedEventMs));
}

// alice and bob on one relay, contacts: alice may see bob's presence.
struct AliceSeesBob {
  RelayProcess& relay;
  TestUser alice = MUST(RegisterUser(relay, "alice"));
  TestUser bob = MUST(RegisterUser(relay, "bob"));
  explicit AliceSeesBob(RelayProcess& r) : relay(r) { MakeContacts(relay.api(), alice, relay.api(), bob); }
  std::pair<std::string, int64_t> BobAsAlice() const {
    return PresenceOfOne(relay.api(), alice.access_token, bob.user_id);
  }
  // bob connects; returns once alice sees him online.
  WsSession BobOnline() const {
    WsSession ws = MUST(Auth(relay, bob.access_token));
    REQUIRE(WaitFor([&] { return BobAsAlice().first == "online"; }, kEventMs));
    return ws;
  }
};

// The presence_update events for `user_id` queued in `s` up to a barrier.
std::vector<std::string> PresenceSeen(WsSession& s, const std::string& user_id) {
  MUST(s.Barrier());
  std::vector<std::string> out;
  for (const Json& e : s.TakeAll("presence_update")) {
    if (e.Str("user_id") == user_id) out.push_back(e.Str("status"));
  }
  return out;
}

}  // namespace

TEST_CASE("privacy: settings are the user's own, checked, and hide the photo and status message from others",
          "[integration][privacy]") {
  auto relay = StartRelay();
  const HostPort& api = relay->api();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  TestUser carol = MUST(RegisterUser(*relay, "carol"));
  MakeContacts(api, alice, api, carol);

  // The defaults: everyone sees everything.
  Json me = Me(*relay, alice.access_token);
  CHECK(
      Dump(me["privacy"]) ==
      R"({"last_seen":"everyone","profile_photo":"everyone","about":"everyone","groups":"everyone","read_receipts":true})");

  // Bad settings are refused, naming the field, and change nothing.
  for (const char* bad : {R"({"last_seen":"friends"})", R"({"colour":"red"})", R"({"read_receipts":"no"})", "{}",
                          R"("contacts")", R"({"about":"nobody","groups":7})"}) {
    INFO(bad);
    HttpResponse r = ApiPatch(api, "/users/me", PrivacyBody(bad), alice.access_token);
    CheckRestError(r, 400, "bad_request");
    CHECK(r.body.find("privacy") != std::string::npos);
  }
  CHECK(Dump(Me(*relay, alice.access_token)["privacy"]) == Dump(me["privacy"]));

  // Profile fields and privacy in one request; the answer is the whole own profile, and
  // alice's other sessions are told.
  WsSession phone_ws = MUST(Auth(*relay, alice.access_token));
  WsSession carol_ws = MUST(Auth(*relay, carol.access_token));  // a contact: told to refetch
  HttpResponse r = ApiPatch(api, "/users/me",
                            JsonBuilder()
                                .Add("status_message", "at the lake")
                                .Add("profile_picture_url", "https://img/a.png")
                                .Raw("privacy", R"({"profile_photo":"contacts","about":"nobody"})")
                                .str(),
                            alice.access_token);
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  CHECK(StrOf(Get(r.data(), "status_message")) == "at the lake");
  CHECK(StrOf(Get(r.data(), "profile_picture_url")) == "https://img/a.png");
  CHECK(StrOf(At(r.data(), "privacy.profile_photo")) == "contacts");
  CHECK(StrOf(At(r.data(), "privacy.about")) == "nobody");
  CHECK(StrOf(At(r.data(), "privacy.last_seen")) == "everyone");
  auto updated = phone_ws.WaitFor(
      [](const Json& e) { return e.type() == "profile_updated" && StrOf(At(e["user"], "privacy.about")) == "nobody"; },
      kEventMs);
  REQUIRE(updated.ok());
  CHECK(StrOf(At((*updated)["user"], "status_message")) == "at the lake");
  CHECK(IsDecimalId((*updated)["cursor"]));
  auto told = carol_ws.WaitFor("user_updated", kEventMs);
  REQUIRE(told.ok());
  CHECK(told->Str("user_id") == alice.user_id);
  CHECK_FALSE(told->Has("user"));  // what carol may see comes from GET /users/{id}

  // bob (no contact) sees neither; carol (a contact) the photo only; alice both.
  Json as_bob = UserAs(api, alice.user_id, bob.access_token);
  CHECK(as_bob["profile_picture_url"].IsNull());
  CHECK(as_bob.Str("status_message").empty());
  CHECK(as_bob.Str("username") == "alice");
  Json as_carol = UserAs(api, alice.user_id, carol.access_token);
  CHECK(as_carol.Str("profile_picture_url") == "https://img/a.png");
  CHECK(as_carol.Str("status_message").empty());
  Json as_alice = UserAs(api, alice.user_id, alice.access_token);
  CHECK(as_alice.Str("status_message") == "at the lake");
  // The directory search and the contact list apply the same rules.
  HttpResponse found = ApiGet(api, "/users?query=alice", bob.access_token);
  REQUIRE(found.status == 200);
  REQUIRE(Get(found.data(), "users").Size() == 1);
  CHECK(Get(Get(found.data(), "users")[0], "profile_picture_url").IsNull());
  HttpResponse contacts = ApiGet(api, "/contacts", carol.access_token);
  REQUIRE(contacts.status == 200);
  CHECK(StrOf(At(Get(contacts.data(), "contacts")[0], "user.profile_picture_url")) == "https://img/a.png");
  CHECK(StrOf(At(Get(contacts.data(), "contacts")[0], "user.status_message")).empty());

  // A message shows the sender's photo only to everyone or to no one: alice's is hidden.
  std::string chat = MUST(CreateChat(api, alice.access_token, "group", {bob.user_id, carol.user_id}, "g"));
  WsSession bob_ws = MUST(Auth(*relay, bob.access_token));
  MUST(PostText(api, alice.access_token, chat, "hello"));
  auto ev = bob_ws.WaitFor("new_message", kEventMs);
  REQUIRE(ev.ok());
  CHECK(At((*ev)["message"], "sender.profile_picture_url").IsNull());
  auto hist = MUST(History(api, bob.access_token, chat));
  REQUIRE(hist.size() == 1);
  CHECK(At(hist[0].root(), "sender.profile_picture_url").IsNull());
  // Back to everyone: the photo shows in messages again.
  REQUIRE(ApiPatch(api, "/users/me", PrivacyBody(R"({"profile_photo":"everyone"})"), alice.access_token).status == 200);
  hist = MUST(History(api, bob.access_token, chat));
  CHECK(StrOf(At(hist[0].root(), "sender.profile_picture_url")) == "https://img/a.png");

  // The settings are envelopes in the log: a restart keeps them.
  MUST(relay->Stop());
  MUST(relay->Start());
  Json after = Me(*relay, alice.access_token);
  CHECK(StrOf(At(after.root(), "privacy.about")) == "nobody");
  CHECK(StrOf(At(after.root(), "privacy.profile_photo")) == "everyone");
}

TEST_CASE("privacy: last_seen decides who gets presence_update, GET /presence lists what I may see",
          "[integration][privacy][presence]") {
  auto relay = StartRelay();
  const HostPort& api = relay->api();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));      // alice's contact
  TestUser carol = MUST(RegisterUser(*relay, "carol"));  // shares a group with alice
  TestUser dave = MUST(RegisterUser(*relay, "dave"));    // a stranger
  MakeContacts(api, alice, api, bob);
  std::string chat = MUST(CreateChat(api, alice.access_token, "group", {carol.user_id}, "g"));
  REQUIRE(ApiPatch(api, "/users/me", PrivacyBody(R"({"last_seen":"contacts"})"), alice.access_token).status == 200);

  WsSession bob_ws = MUST(Auth(*relay, bob.access_token));
  WsSession carol_ws = MUST(Auth(*relay, carol.access_token));
  WsSession alice_ws = MUST(Auth(*relay, alice.access_token));
  auto online = bob_ws.WaitFor(
      [&](const Json& e) { return e.type() == "presence_update" && e.Str("user_id") == alice.user_id; }, kEventMs);
  REQUIRE(online.ok());
  CHECK(online->Str("status") == "online");
  CHECK(IsRfc3339Ms((*online)["last_seen"]));
  // carol shares a chat but is no contact: nothing (her typing event comes after it would have).
  SEND(alice_ws, JsonBuilder().Add("type", "typing").Add("chat_id", chat).Add("state", "start").str());
  REQUIRE(carol_ws.WaitFor("user_typing", kEventMs).ok());
  CHECK(PresenceSeen(carol_ws, alice.user_id).empty());

  // The lists: bob sees alice online; carol and dave do not see her.
  CHECK(PresenceAs(api, bob.access_token)[alice.user_id] == "online");
  CHECK(PresenceAs(api, carol.access_token).count(alice.user_id) == 0);
  CHECK(PresenceAs(api, carol.access_token, "?user_ids=" + alice.user_id)[alice.user_id] == "unknown");
  CHECK(PresenceAs(api, dave.access_token, "?user_ids=" + alice.user_id)[alice.user_id] == "unknown");
  // alice sees carol (default: everyone who shares a chat) and bob.
  auto alices = PresenceAs(api, alice.access_token);
  CHECK(alices[carol.user_id] == "online");
  CHECK(alices[bob.user_id] == "online");
  CHECK(alices.count(dave.user_id) == 0);
  CHECK(PresenceAs(api, alice.access_token, "?user_ids=" + dave.user_id)[dave.user_id] == "unknown");
  // Bad lists are refused.
  CheckRestError(ApiGet(api, "/presence?user_ids=12,abc", alice.access_token), 400, "bad_request");
  std::string many;
  for (int i = 1; i <= 201; ++i) many += (i > 1 ? "," : "") + std::to_string(i);
  CheckRestError(ApiGet(api, "/presence?user_ids=" + many, alice.access_token), 400, "bad_request");
  CheckRestError(ApiGet(api, "/presence", ""), 401, "unauthorized");

  // away reaches bob; a repeat of the same status sends nothing new.
  SEND(alice_ws, R"({"type":"presence","status":"away"})");
  REQUIRE(bob_ws
              .WaitFor(
                  [&](const Json& e) {
                    return e.type() == "presence_update" && e.Str("user_id") == alice.user_id &&
                           e.Str("status") == "away";
                  },
                  kEventMs)
              .ok());
  SEND(alice_ws, R"({"type":"presence","status":"away"})");
  REQUIRE(alice_ws.WaitFor("presence_ok", kEventMs).ok());
  REQUIRE(alice_ws.WaitFor("presence_ok", kEventMs).ok());
  CHECK(PresenceSeen(bob_ws, alice.user_id).empty());
  CHECK(PresenceAs(api, bob.access_token)[alice.user_id] == "away");

  // nobody: bob no longer sees her, and her going offline is not announced.
  REQUIRE(ApiPatch(api, "/users/me", PrivacyBody(R"({"last_seen":"nobody"})"), alice.access_token).status == 200);
  CHECK(PresenceAs(api, bob.access_token, "?user_ids=" + alice.user_id)[alice.user_id] == "unknown");
  (void)alice_ws.ws().Close();
  // She always sees her own: once she is offline, the relay has decided whom to tell.
  REQUIRE(WaitFor(
      [&] { return PresenceAs(api, alice.access_token, "?user_ids=" + alice.user_id)[alice.user_id] == "offline"; },
      kEventMs));
  CHECK(PresenceSeen(bob_ws, alice.user_id).empty());
  // Back to everyone: she shows offline, with the time she was last seen.
  REQUIRE(ApiPatch(api, "/users/me", PrivacyBody(R"({"last_seen":"everyone"})"), alice.access_token).status == 200);
  REQUIRE(WaitFor([&] { return PresenceAs(api, bob.access_token)[alice.user_id] == "offline"; }, kEventMs));
  HttpResponse r = ApiGet(api, "/presence?user_ids=" + alice.user_id, bob.access_token);
  CHECK(IsRfc3339Ms(At(Get(r.data(), "presence")[0], "last_seen")));
}

TEST_CASE("presence: last_seen survives a restart of the relay", "[integration][privacy][presence]") {
  auto relay = StartRelay();
  AliceSeesBob t(*relay);

  // bob comes and goes: alice sees him offline since he left.
  WsSession bob_ws = t.BobOnline();
  const int64_t leaving_at = NowMs();
  (void)bob_ws.ws().Close();
  REQUIRE(WaitFor([&] { return t.BobAsAlice().first == "offline"; }, kEventMs));
  const int64_t seen_offline = NowMs();
  const int64_t left = t.BobAsAlice().second;
  CHECK(left >= leaving_at);
  CHECK(left <= seen_offline);

  // After a restart alice still sees when he left, not "never".
  MUST(relay->Stop());
  MUST(relay->Start());
  auto after = t.BobAsAlice();
  CHECK(after.first == "offline");
  CHECK(after.second == left);
  CHECK(PresenceAs(relay->api(), t.alice.access_token)[t.bob.user_id] == "offline");
}

TEST_CASE("presence: after a kill -9 a connected user's last_seen is at most one presence interval old",
          "[integration][privacy][presence]") {
  RelayOptions opts = Options();
  opts.config.push_back({"gateway", "presence_interval", "1"});
  auto relay = StartRelay(opts);
  AliceSeesBob t(*relay);

  WsSession bob_ws = t.BobOnline();
  // bob is the only user ever connected: each stored time is his, refreshed every interval.
  REQUIRE(WaitFor([&] { return MUST(MetricValue(*relay, "chatd_last_seen_saved_total")) >= 2; }, 10000, 50));
  const int64_t killed_at = NowMs();
  relay->Kill9();
  MUST(relay->Start());
  auto after = t.BobAsAlice();
  CHECK(after.first == "offline");
  constexpr int64_t kIntervalMs = 1000, kToleranceMs = 1500;
  CHECK(after.second >= killed_at - kIntervalMs - kToleranceMs);
  CHECK(after.second <= killed_at);
}

TEST_CASE("privacy: with read receipts off others see deliveries only, groups: who may add me",
          "[integration][privacy]") {
  auto relay = StartRelay();
  const HostPort& api = relay->api();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  TestUser carol = MUST(RegisterUser(*relay, "carol"));
  MakeContacts(api, alice, api, bob);
  REQUIRE(ApiPatch(api, "/users/me", PrivacyBody(R"({"read_receipts":false})"), alice.access_token).status == 200);
  std::string chat = MUST(CreateChat(api, bob.access_token, "direct", {alice.user_id}));
  WsSession bob_ws = MUST(Auth(*relay, bob.access_token));
  WsSession alice_ws = MUST(Auth(*relay, alice.access_token));

  auto ack = [&](const std::string& mid, const char* status) {
    SEND(alice_ws,
         JsonBuilder().Add("type", "ack").Add("chat_id", chat).Add("message_id", mid).Add("status", status).str());
  };
  auto bobs_status = [&](const std::string& mid) {
    for (const Json& m : MUST(History(api, bob.access_token, chat))) {
      if (m.Str("message_id") == mid) return m.Str("delivery_status");
    }
    return std::string("missing");
  };
  auto receipts = [&](const std::string& mid, const std::string& token) {
    HttpResponse r = ApiGet(api, "/chats/" + chat + "/messages/" + mid + "/receipts", token);
    INFO(r.Describe());
    REQUIRE(r.status == 200);
    return std::make_pair(Dump(Get(r.data(), "delivered")), Dump(Get(r.data(), "read")));
  };

  std::string m1 = MUST(PostText(api, bob.access_token, chat, "one")).Str("message_id");
  ack(m1, "read");
  auto ev = bob_ws.WaitForAny({"message_read", "message_delivered"}, kEventMs);
  REQUIRE(ev.ok());
  CHECK(ev->type() == "message_delivered");
  CHECK(ev->Str("up_to_message_id") == m1);
  CHECK(bobs_status(m1) == "delivered");
  CHECK(receipts(m1, bob.access_token) == std::make_pair("[\"" + alice.user_id + "\"]", std::string("[]")));
  // alice herself still sees her read (her unread count is hers).
  CHECK(receipts(m1, alice.access_token).second == "[\"" + alice.user_id + "\"]");

  // Back on: the next read shows, and so does the earlier one (the relay kept it).
  REQUIRE(ApiPatch(api, "/users/me", PrivacyBody(R"({"read_receipts":true})"), alice.access_token).status == 200);
  CHECK(bobs_status(m1) == "read");
  std::string m2 = MUST(PostText(api, bob.access_token, chat, "two")).Str("message_id");
  ack(m2, "read");
  auto read = bob_ws.WaitFor(
      [&](const Json& e) { return e.type() == "message_read" && e.Str("up_to_message_id") == m2; }, kEventMs);
  REQUIRE(read.ok());
  CHECK(read->Str("user_id") == alice.user_id);
  CHECK(bobs_status(m2) == "read");

  // groups: contacts only. carol (no contact) can neither create a group with alice nor add her.
  REQUIRE(ApiPatch(api, "/users/me", PrivacyBody(R"({"groups":"contacts"})"), alice.access_token).status == 200);
  std::string create = JsonBuilder()
                           .Add("chat_type", "group")
                           .Add("chat_name", "c")
                           .Raw("participants", "[\"" + alice.user_id + "\"]")
                           .str();
  CheckRestError(ApiPost(api, "/chats", create, carol.access_token), 403, "privacy_restricted");
  HttpResponse chats = ApiGet(api, "/chats", carol.access_token);
  REQUIRE(chats.status == 200);
  CHECK(Get(chats.data(), "chats").Size() == 0);  // nothing was created
  std::string carols = MUST(CreateChat(api, carol.access_token, "group", {bob.user_id}, "carol's"));
  std::string add = JsonBuilder().Raw("user_ids", "[\"" + alice.user_id + "\"]").str();
  CheckRestError(ApiPost(api, "/chats/" + carols + "/members", add, carol.access_token), 403, "privacy_restricted");
  // A direct chat is not a group: carol may still write to her.
  CHECK(CreateChat(api, carol.access_token, "direct", {alice.user_id}).ok());
  // bob, a contact, may add her; with "nobody" he may not either.
  std::string bobs = MUST(CreateChat(api, bob.access_token, "group", {alice.user_id}, "bob's"));
  REQUIRE(ApiPatch(api, "/users/me", PrivacyBody(R"({"groups":"nobody"})"), alice.access_token).status == 200);
  CheckRestError(ApiPost(api, "/chats", create, bob.access_token), 403, "privacy_restricted");
  HttpResponse chat_now = ApiGet(api, "/chats/" + bobs, alice.access_token);
  CHECK(chat_now.status == 200);  // the group made while he could stays hers
}

TEST_CASE("privacy and presence across federation: settings replicate, a stopped relay's users go offline",
          "[integration][privacy][presence][federation]") {
  FedChain chain;
  RelayOptions opts = Options();
  opts.config.push_back({"gateway", "presence_interval", "1"});
  MUST(chain.Start(opts));
  RelayProcess& A = *chain.a;
  RelayProcess& C = *chain.c;
  TestUser alice = MUST(RegisterUser(A, "alice"));
  TestUser carol = MUST(RegisterUser(C, "carol"));
  TestUser bob = MUST(RegisterUser(A, "bob"));
  RequireConverged(chain.all(), 15000);
  MakeContacts(A.api(), alice, C.api(), carol);

  // carol hides her status message from everyone but contacts, on C; A applies it.
  REQUIRE(ApiPatch(C.api(), "/users/me",
                   JsonBuilder().Add("status_message", "on call").Raw("privacy", R"({"about":"contacts"})").str(),
                   carol.access_token)
              .status == 200);
  REQUIRE(WaitFor([&] { return UserAs(A.api(), carol.user_id, alice.access_token).Str("status_message") == "on call"; },
                  kFedEventMs));
  CHECK(UserAs(A.api(), carol.user_id, bob.access_token).Str("status_message").empty());

  // carol comes online on C: alice hears of it on A, and her list shows it.
  WsSession alice_ws = MUST(Auth(A, alice.access_token));
  WsSession carol_ws = MUST(Auth(C, carol.access_token));
  auto on = alice_ws.WaitFor(
      [&](const Json& e) {
        return e.type() == "presence_update" && e.Str("user_id") == carol.user_id && e.Str("status") == "online";
      },
      kFedEventMs);
  REQUIRE(on.ok());
  CHECK(PresenceAs(A.api(), alice.access_token)[carol.user_id] == "online");
  // C stops without a word (kill -9): within 2.5 presence intervals A shows her offline.
  C.Kill9();
  auto off = alice_ws.WaitFor(
      [&](const Json& e) {
        return e.type() == "presence_update" && e.Str("user_id") == carol.user_id && e.Str("status") == "offline";
      },
      kFedEventMs);
  REQUIRE(off.ok());
  CHECK(IsRfc3339Ms((*off)["last_seen"]));
  CHECK(PresenceAs(A.api(), alice.access_token)[carol.user_id] == "offline");
  // C back: carol reconnects there and shows online on A again (the snapshot on link-up).
  MUST(C.Start());
  WsSession carol_again = MUST(Auth(C, carol.access_token));
  REQUIRE(WaitFor([&] { return PresenceAs(A.api(), alice.access_token)[carol.user_id] == "online"; }, kFedEventMs));
}

}  // namespace chatd::test
