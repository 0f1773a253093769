// Blocks, contacts and reports (PROTOCOL.md "POST /blocks", "POST /contacts/requests",
// "POST /reports"), threads ("GET …/thread"), forwarding ("forward_from") and delete for
// me ("DELETE …?for=me"), over REST
// and WebSocket against real relays; blocks and contacts also across a federation.
#include "tests/integration/harness.h"
#include "tests/support/fed_chain.h"
#include "tests/support/fed_checks.h"

namespace chatd::test {
namespace {

std::string UserBody(const std::string& user_id) { return JsonBuilder().Add("user_id", user_id).str(); }

// The user ids listed under `key` in a GET's data, each entry's "user_id".
std::set<std::string> ListedUsers(const HostPort& api, const std::string& path, const char* key,
                                  const std::string& token) {
  HttpResponse r = ApiGet(api, path, token);
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  std::set<std::string> out;
  const auto& list = Get(r.data(), key);
  REQUIRE(list.IsArray());
  for (const auto& e : list.GetArray()) out.insert(StrOf(Get(e, "user_id")));
  return out;
}

// A WebSocket text send answered by an error (ref = temp_id) rather than message_sent.
std::string WsSendErrorCode(WsSession& s, const std::string& chat, const std::string& temp) {
  SEND(s, SendMessageFrame(chat, "through the socket", temp));
  auto ev = s.WaitFor(
      [&](const Json& e) {
        return (e.type() == "message_sent" && e.Str("temp_id") == temp) ||
               (e.type() == "error" && e.Str("ref") == temp);
      },
      kEventMs);
  REQUIRE_MSG(ev.ok(), "no answer to " << temp << ": " << ev.status().message());
  return ev->type() == "error" ? ev->Str("code") : "sent";
}

Json WaitEvent(WsSession& s, const std::string& type, const std::function<bool(const Json&)>& pred, int ms) {
  auto ev = s.WaitFor([&](const Json& e) { return e.type() == type && pred(e); }, ms);
  REQUIRE_MSG(ev.ok(), "no " << type << ": " << ev.status().message());
  return std::move(ev).value();
}

}  // namespace

TEST_CASE("blocks: a blocked pair's direct messages and contact requests get 403 blocked, unblocking restores them",
          "[integration][social][blocks]") {
  auto relay = StartRelay();
  const HostPort& api = relay->api();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  TestUser carol = MUST(RegisterUser(*relay, "carol"));
  std::string direct = MUST(CreateChat(api, alice.access_token, "direct", {bob.user_id}));
  std::string group = MUST(CreateChat(api, alice.access_token, "group", {bob.user_id, carol.user_id}, "trio"));
  Json before = MUST(PostText(api, bob.access_token, direct, "hi alice"));
  WsSession alice_phone = MUST(Auth(*relay, alice.access_token));
  WsSession bob_ws = MUST(Auth(*relay, bob.access_token));

  // Bad input changes nothing.
  CheckRestError(ApiPost(api, "/blocks", UserBody(alice.user_id), alice.access_token), 400, "bad_request");
  CheckRestError(ApiPost(api, "/blocks", UserBody("123456789"), alice.access_token), 404, "not_found");
  CheckRestError(ApiPost(api, "/blocks", "{\"user_id\":\"bob\"}", alice.access_token), 400, "bad_request");
  CheckRestError(ApiPost(api, "/blocks", UserBody(bob.user_id)), 401, "unauthorized");
  CheckRestError(ApiDelete(api, "/blocks/" + bob.user_id, alice.access_token), 404, "not_found");
  CHECK(ListedUsers(api, "/blocks", "blocks", alice.access_token).empty());

  HttpResponse b = ApiPost(api, "/blocks", UserBody(bob.user_id), alice.access_token);
  INFO(b.Describe());
  REQUIRE(b.status == 201);
  CHECK(StrOf(Get(b.data(), "user_id")) == bob.user_id);
  CHECK(IsRfc3339Ms(Get(b.data(), "blocked_at")));
  // Blocking again is a no-op with the same answer.
  HttpResponse again = ApiPost(api, "/blocks", UserBody(bob.user_id), alice.access_token);
  CHECK(again.status == 201);
  CHECK(StrOf(Get(again.data(), "blocked_at")) == StrOf(Get(b.data(), "blocked_at")));
  CHECK(ListedUsers(api, "/blocks", "blocks", alice.access_token) == std::set<std::string>{bob.user_id});
  CHECK(ListedUsers(api, "/blocks", "blocks", bob.access_token).empty());  // bob's own list
  // alice's other devices learn of it.
  Json ev = WaitEvent(
      alice_phone, "block_updated", [&](const Json& e) { return e.Str("user_id") == bob.user_id; }, kEventMs);
  CHECK(ev["blocked"].IsTrue());
  CHECK(ev.Has("cursor"));

  // Direct messages, either way, by REST and by WebSocket; and a new contact request.
  CheckRestError(
      ApiPost(api, "/chats/" + direct + "/messages", JsonBuilder().Add("content", "hello?").str(), bob.access_token),
      403, "blocked");
  CheckRestError(
      ApiPost(api, "/chats/" + direct + "/messages", JsonBuilder().Add("content", "psst").str(), alice.access_token),
      403, "blocked");
  CHECK(WsSendErrorCode(bob_ws, direct, "blocked-1") == "blocked");
  // Typing does not cross the block either.
  const std::string typing = JsonBuilder().Add("type", "typing").Add("chat_id", direct).Add("state", "start").str();
  SEND(bob_ws, typing);
  CHECK(WaitEvent(
            bob_ws, "error", [](const Json& e) { return e.Str("ref") == "typing"; }, kEventMs)
            .Str("code") == "blocked");
  CheckRestError(ApiPost(api, "/contacts/requests", UserBody(alice.user_id), bob.access_token), 403, "blocked");
  // The group is not a direct chat: bob still talks there.
  MUST(PostText(api, bob.access_token, group, "still in the group"));
  std::vector<Json> hist = MUST(History(api, alice.access_token, direct));
  REQUIRE(hist.size() == 1);
  CHECK(hist[0].Str("message_id") == before.Str("message_id"));

  // Unblocking restores both.
  HttpResponse un = ApiDelete(api, "/blocks/" + bob.user_id, alice.access_token);
  INFO(un.Describe());
  CHECK(un.status == 204);
  CHECK(ListedUsers(api, "/blocks", "blocks", alice.access_token).empty());
  CHECK(WsSendErrorCode(bob_ws, direct, "after-1") == "sent");
  SEND(bob_ws, typing);
  CHECK(WaitEvent(
            alice_phone, "user_typing", [&](const Json& e) { return e.Str("user_id") == bob.user_id; }, kEventMs)
            .Str("chat_id") == direct);
  HttpResponse rq = ApiPost(api, "/contacts/requests", UserBody(alice.user_id), bob.access_token);
  INFO(rq.Describe());
  CHECK(rq.status == 201);
  CHECK(MUST(History(api, alice.access_token, direct)).size() == 2);

  // A new direct chat with someone who blocked you is refused too.
  REQUIRE(ApiPost(api, "/blocks", UserBody(alice.user_id), carol.access_token).status == 201);
  CheckRestError(
      ApiPost(api, "/chats",
              JsonBuilder().Add("chat_type", "direct").Raw("participants", JsonStringArray({carol.user_id})).str(),
              alice.access_token),
      403, "blocked");
}

TEST_CASE("contacts: request, accept, list, remove, decline and cancel, asking back accepts",
          "[integration][social][contacts]") {
  auto relay = StartRelay();
  const HostPort& api = relay->api();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  TestUser carol = MUST(RegisterUser(*relay, "carol"));
  WsSession alice_ws = MUST(Auth(*relay, alice.access_token));
  WsSession bob_ws = MUST(Auth(*relay, bob.access_token));

  CheckRestError(ApiPost(api, "/contacts/requests", UserBody(alice.user_id), alice.access_token), 400, "bad_request");
  CheckRestError(ApiPost(api, "/contacts/requests", UserBody("99999"), alice.access_token), 404, "not_found");

  HttpResponse r = ApiPost(api, "/contacts/requests", UserBody(bob.user_id), alice.access_token);
  INFO(r.Describe());
  REQUIRE(r.status == 201);
  std::string request_id = StrOf(Get(r.data(), "request_id"));
  CHECK(IsDecimalId(Get(r.data(), "request_id")));
  CHECK(StrOf(Get(r.data(), "status")) == "pending");
  CHECK(StrOf(Get(r.data(), "direction")) == "outgoing");
  CHECK(StrOf(At(r.data(), "user.user_id")) == bob.user_id);
  // Asking again returns the same pending request.
  HttpResponse again = ApiPost(api, "/contacts/requests", UserBody(bob.user_id), alice.access_token);
  CHECK(again.status == 200);
  CHECK(StrOf(Get(again.data(), "request_id")) == request_id);
  // bob is told at once, and lists it as incoming.
  WaitEvent(
      bob_ws, "contact_request", [&](const Json& e) { return e.Str("request_id") == request_id; }, kEventMs);
  {
    HttpResponse list = ApiGet(api, "/contacts/requests", bob.access_token);
    INFO(list.Describe());
    REQUIRE(list.status == 200);
    const auto& reqs = Get(list.data(), "requests");
    REQUIRE(reqs.IsArray());
    REQUIRE(reqs.Size() == 1);
    CHECK(StrOf(Get(reqs[0], "request_id")) == request_id);
    CHECK(StrOf(Get(reqs[0], "direction")) == "incoming");
    CHECK(StrOf(At(reqs[0], "user.handle")) == alice.handle);
  }
  // Only the recipient accepts; strangers do not see it.
  CheckRestError(ApiPost(api, "/contacts/requests/" + request_id + "/accept", "{}", alice.access_token), 403,
                 "forbidden");
  CheckRestError(ApiPost(api, "/contacts/requests/" + request_id + "/accept", "{}", carol.access_token), 404,
                 "not_found");
  HttpResponse acc = ApiPost(api, "/contacts/requests/" + request_id + "/accept", "{}", bob.access_token);
  INFO(acc.Describe());
  REQUIRE(acc.status == 200);
  CHECK(StrOf(Get(acc.data(), "status")) == "accepted");
  CheckRestError(ApiPost(api, "/contacts/requests/" + request_id + "/accept", "{}", bob.access_token), 409,
                 "request_closed");
  WaitEvent(
      alice_ws, "contact_request_updated",
      [&](const Json& e) { return e.Str("request_id") == request_id && e.Str("status") == "accepted"; }, kEventMs);
  CHECK(ListedUsers(api, "/contacts", "contacts", alice.access_token) == std::set<std::string>{bob.user_id});
  CHECK(ListedUsers(api, "/contacts", "contacts", bob.access_token) == std::set<std::string>{alice.user_id});
  CheckRestError(ApiPost(api, "/contacts/requests", UserBody(bob.user_id), alice.access_token), 409,
                 "already_contacts");
  // Contacts see each other's presence, though they share no chat.
  SEND(alice_ws, "{\"type\":\"presence\",\"status\":\"away\"}");
  Json seen = WaitEvent(
      bob_ws, "presence_update", [&](const Json& e) { return e.Str("user_id") == alice.user_id; }, kEventMs);
  CHECK(seen.Str("status") == "away");
  CHECK(ListedUsers(api, "/contacts/requests", "requests", bob.access_token).empty());

  // Removing ends it for both.
  CHECK(ApiDelete(api, "/contacts/" + alice.user_id, bob.access_token).status == 204);
  CHECK(ListedUsers(api, "/contacts", "contacts", alice.access_token).empty());
  CHECK(ListedUsers(api, "/contacts", "contacts", bob.access_token).empty());
  CheckRestError(ApiDelete(api, "/contacts/" + alice.user_id, bob.access_token), 404, "not_found");
  WaitEvent(
      alice_ws, "contact_removed", [&](const Json& e) { return e.Str("by") == bob.user_id; }, kEventMs);

  // Declined by the recipient, cancelled by the sender.
  std::string from_carol =
      StrOf(Get(ApiPost(api, "/contacts/requests", UserBody(alice.user_id), carol.access_token).data(), "request_id"));
  HttpResponse dec = ApiPost(api, "/contacts/requests/" + from_carol + "/decline", "{}", alice.access_token);
  INFO(dec.Describe());
  CHECK(StrOf(Get(dec.data(), "status")) == "declined");
  std::string to_bob =
      StrOf(Get(ApiPost(api, "/contacts/requests", UserBody(bob.user_id), carol.access_token).data(), "request_id"));
  HttpResponse can = ApiPost(api, "/contacts/requests/" + to_bob + "/decline", "{}", carol.access_token);
  CHECK(StrOf(Get(can.data(), "status")) == "cancelled");
  CHECK(ListedUsers(api, "/contacts/requests", "requests", alice.access_token).empty());
  CHECK(ListedUsers(api, "/contacts", "contacts", carol.access_token).empty());

  // Asking someone who already asked you accepts their request.
  std::string bob_asks =
      StrOf(Get(ApiPost(api, "/contacts/requests", UserBody(carol.user_id), bob.access_token).data(), "request_id"));
  HttpResponse back = ApiPost(api, "/contacts/requests", UserBody(bob.user_id), carol.access_token);
  INFO(back.Describe());
  CHECK(back.status == 200);
  CHECK(StrOf(Get(back.data(), "request_id")) == bob_asks);
  CHECK(StrOf(Get(back.data(), "status")) == "accepted");
  CHECK(ListedUsers(api, "/contacts", "contacts", carol.access_token) == std::set<std::string>{bob.user_id});

  // Everything above is in the log: a restart keeps it.
  MUST(relay->Stop());
  MUST(relay->Start());
  CHECK(ListedUsers(api, "/contacts", "contacts", bob.access_token) == std::set<std::string>{carol.user_id});
}

TEST_CASE("reports: filed by members, bounded, listed and resolved with chatctl", "[integration][social][reports]") {
  auto relay = StartRelay();
  const HostPort& api = relay->api();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  TestUser mallory = MUST(RegisterUser(*relay, "mallory"));
  std::string chat = MUST(CreateChat(api, alice.access_token, "direct", {bob.user_id}));
  Json msg = MUST(PostText(api, alice.access_token, chat, "something nasty"));
  const std::string mid = msg.Str("message_id");

  auto report = [&](const std::string& body, const std::string& token) {
    return ApiPost(api, "/reports", body, token);
  };
  CheckRestError(report(JsonBuilder().Add("message_id", mid).str(), bob.access_token), 400, "bad_request");
  CheckRestError(report(JsonBuilder().Add("reason", "spam").str(), bob.access_token), 400, "bad_request");
  CheckRestError(
      report(JsonBuilder().Add("message_id", mid).Add("reason", std::string(2001, 'x')).str(), bob.access_token), 413,
      "too_large");
  // Only what the reporter can read: mallory is not in the chat.
  CheckRestError(report(JsonBuilder().Add("message_id", mid).Add("reason", "spam").str(), mallory.access_token), 404,
                 "not_found");
  CheckRestError(report(JsonBuilder().Add("user_id", bob.user_id).Add("reason", "me").str(), bob.access_token), 400,
                 "bad_request");

  HttpResponse r =
      report(JsonBuilder().Add("message_id", mid).Add("reason", "harassment\nline two").str(), bob.access_token);
  INFO(r.Describe());
  REQUIRE(r.status == 201);
  std::string report_id = StrOf(Get(r.data(), "report_id"));
  CHECK(IsDecimalId(Get(r.data(), "report_id")));
  CHECK(StrOf(Get(r.data(), "status")) == "open");
  HttpResponse r2 =
      report(JsonBuilder().Add("user_id", alice.user_id).Add("reason", "spam").str(), mallory.access_token);
  REQUIRE(r2.status == 201);

  CommandResult list = Chatctl(CHATCTL_BIN, *relay, {"-o", "json", "reports", "list"});
  INFO(list.out << list.err);
  REQUIRE(list.exit_code == 0);
  Json reports = MUST(Json::Parse(list.out));
  REQUIRE(reports.root().IsArray());
  REQUIRE(reports.root().Size() == 2);
  const auto& first = reports.root()[0];
  CHECK(StrOf(Get(first, "report_id")) == report_id);
  CHECK(StrOf(Get(first, "reporter_id")) == bob.user_id);
  CHECK(StrOf(Get(first, "user_id")) == alice.user_id);  // the message's sender
  CHECK(StrOf(Get(first, "message_id")) == mid);
  CHECK(StrOf(Get(first, "chat_id")) == chat);
  CHECK(StrOf(Get(first, "reason")) == "harassment\nline two");

  CommandResult table = Chatctl(CHATCTL_BIN, *relay, {"reports", "list"});
  CHECK(table.exit_code == 0);
  CHECK(table.out.find("harassment line two") != std::string::npos);  // one line per report

  CommandResult done = Chatctl(CHATCTL_BIN, *relay, {"reports", "resolve", report_id, "--note", "user warned"});
  INFO(done.out << done.err);
  CHECK(done.exit_code == 0);
  CHECK(Chatctl(CHATCTL_BIN, *relay, {"reports", "resolve", report_id}).exit_code != 0);  // already resolved
  CHECK(Chatctl(CHATCTL_BIN, *relay, {"reports", "resolve", "12345"}).exit_code != 0);    // no such report
  CHECK(Chatctl(CHATCTL_BIN, *relay, {"reports", "resolve", "not-an-id"}).exit_code == 2);

  Json open = MUST(Json::Parse(Chatctl(CHATCTL_BIN, *relay, {"-o", "json", "reports", "list"}).out));
  REQUIRE(open.root().IsArray());
  CHECK(open.root().Size() == 1);
  Json resolved =
      MUST(Json::Parse(Chatctl(CHATCTL_BIN, *relay, {"-o", "json", "reports", "list", "--status", "resolved"}).out));
  REQUIRE(resolved.root().IsArray());
  REQUIRE(resolved.root().Size() == 1);
  CHECK(StrOf(Get(resolved.root()[0], "resolution")) == "user warned");
  CHECK(IsRfc3339Ms(Get(resolved.root()[0], "resolved_at")));
}

TEST_CASE("threads: the replies to a message, oldest first, paged, members only", "[integration][social][threads]") {
  auto relay = StartRelay();
  const HostPort& api = relay->api();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  TestUser eve = MUST(RegisterUser(*relay, "eve"));
  std::string chat = MUST(CreateChat(api, alice.access_token, "group", {bob.user_id}, "thread test"));
  std::string other = MUST(CreateChat(api, alice.access_token, "group", {bob.user_id}, "other"));
  Json root = MUST(PostText(api, alice.access_token, chat, "root"));
  Json unrelated = MUST(PostText(api, alice.access_token, chat, "not a reply"));
  std::vector<std::string> replies;
  for (int i = 0; i < 5; ++i) {
    HttpResponse r = ApiPost(api, "/chats/" + chat + "/messages",
                             JsonBuilder()
                                 .Add("content", "reply " + std::to_string(i))
                                 .Add("reply_to_message_id", root.Str("message_id"))
                                 .str(),
                             i % 2 ? alice.access_token : bob.access_token);
    INFO(r.Describe());
    REQUIRE(r.status == 201);
    replies.push_back(StrOf(Get(r.data(), "message_id")));
  }
  std::string base = "/chats/" + chat + "/messages/" + root.Str("message_id") + "/thread";
  std::vector<std::string> seen;
  std::string after;
  for (int page = 0; page < 10; ++page) {
    HttpResponse r = ApiGet(api, base + "?limit=2" + (after.empty() ? "" : "&after_id=" + after), bob.access_token);
    INFO(r.Describe());
    REQUIRE(r.status == 200);
    for (const auto& m : Get(r.data(), "messages").GetArray()) {
      CHECK(StrOf(Get(m, "reply_to_message_id")) == root.Str("message_id"));
      seen.push_back(StrOf(Get(m, "message_id")));
    }
    if (!Get(r.data(), "has_more").IsTrue()) break;
    after = StrOf(Get(r.data(), "next_after_id"));
  }
  CHECK(seen == replies);  // oldest first, each once, the unrelated message absent
  // A message without replies has an empty thread; errors for the rest.
  HttpResponse empty =
      ApiGet(api, "/chats/" + chat + "/messages/" + unrelated.Str("message_id") + "/thread", alice.access_token);
  REQUIRE(empty.status == 200);
  CHECK(Get(empty.data(), "messages").Size() == 0);
  CheckRestError(ApiGet(api, base, eve.access_token), 403, "not_member");
  CheckRestError(ApiGet(api, "/chats/" + other + "/messages/" + root.Str("message_id") + "/thread", bob.access_token),
                 404, "not_found");
  CheckRestError(ApiGet(api, base + "?limit=0", bob.access_token), 400, "bad_request");
}

TEST_CASE("forwarding: a copy that names its source, only from chats the sender can read",
          "[integration][social][forward]") {
  auto relay = StartRelay();
  const HostPort& api = relay->api();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  TestUser carol = MUST(RegisterUser(*relay, "carol"));
  std::string source = MUST(CreateChat(api, alice.access_token, "group", {carol.user_id}, "source"));
  std::string target = MUST(CreateChat(api, alice.access_token, "direct", {bob.user_id}));
  Json original = MUST(PostText(api, carol.access_token, source, "worth sharing ✨"));
  std::string fwd = JsonBuilder().Add("chat_id", source).Add("message_id", original.Str("message_id")).str();
  WsSession bob_ws = MUST(Auth(*relay, bob.access_token));

  HttpResponse r = ApiPost(api, "/chats/" + target + "/messages", "{\"forward_from\":" + fwd + "}", alice.access_token);
  INFO(r.Describe());
  REQUIRE(r.status == 201);
  CHECK(StrOf(Get(r.data(), "content")) == "worth sharing ✨");
  CHECK(StrOf(Get(r.data(), "sender_id")) == alice.user_id);
  CHECK(StrOf(At(r.data(), "forwarded_from.message_id")) == original.Str("message_id"));
  CHECK(StrOf(At(r.data(), "forwarded_from.chat_id")) == source);
  Json ev = WaitEvent(
      bob_ws, "new_message",
      [&](const Json& e) { return StrOf(At(e.root(), "message.message_id")) == StrOf(Get(r.data(), "message_id")); },
      kEventMs);
  CHECK(StrOf(At(ev.root(), "message.forwarded_from.message_id")) == original.Str("message_id"));
  std::vector<Json> hist = MUST(History(api, bob.access_token, target));
  REQUIRE(hist.size() == 1);
  CHECK(hist[0].Str("content") == "worth sharing ✨");
  CHECK(StrOf(At(hist[0].root(), "forwarded_from.chat_id")) == source);

  // bob cannot read the source chat, so he cannot forward from it.
  CheckRestError(ApiPost(api, "/chats/" + target + "/messages", "{\"forward_from\":" + fwd + "}", bob.access_token),
                 404, "not_found");
  CheckRestError(ApiPost(api, "/chats/" + target + "/messages",
                         "{\"content\":\"and a comment\",\"forward_from\":" + fwd + "}", alice.access_token),
                 400, "bad_request");
  CheckRestError(
      ApiPost(api, "/chats/" + target + "/messages", "{\"forward_from\":\"" + source + "\"}", alice.access_token), 400,
      "bad_request");
  CheckRestError(ApiPost(api, "/chats/" + target + "/messages",
                         "{\"forward_from\":{\"chat_id\":\"" + target + "\",\"message_id\":\"" +
                             original.Str("message_id") + "\"}}",
                         alice.access_token),
                 404, "not_found");  // the message is not in that chat

  // Over the WebSocket too.
  SEND(bob_ws, "{\"type\":\"send_message\",\"chat_id\":\"" + target +
                   "\",\"temp_id\":\"f1\",\"forward_from\":{"
                   "\"chat_id\":\"" +
                   target + "\",\"message_id\":\"" + hist[0].Str("message_id") + "\"}}");
  auto sent = bob_ws.WaitFor([](const Json& e) { return e.Str("temp_id") == "f1" || e.Str("ref") == "f1"; }, kEventMs);
  REQUIRE(sent.ok());
  INFO(sent->text());
  CHECK(sent->type() == "message_sent");
  CHECK(MUST(History(api, alice.access_token, target)).size() == 2);
}

TEST_CASE("delete for me: the message leaves my views on every device, not the others'",
          "[integration][social][hide]") {
  auto relay = StartRelay();
  const HostPort& api = relay->api();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  TestUser eve = MUST(RegisterUser(*relay, "eve"));
  std::string chat = MUST(CreateChat(api, alice.access_token, "group", {bob.user_id}, "hide"));
  std::string other = MUST(CreateChat(api, alice.access_token, "group", {eve.user_id}, "other"));
  Json first = MUST(PostText(api, bob.access_token, chat, "an embarrassing aardvark"));
  Json second = MUST(PostText(api, bob.access_token, chat, "a second message"));
  WsSession alice_phone = MUST(Auth(*relay, alice.access_token));
  WsSession alice_laptop = MUST(Auth(*relay, alice.access_token));
  REQUIRE(WaitFor([&] { return MUST(SearchIds(api, alice.access_token, "aardvark")).size() == 1; }, 10000));
  const std::string path = "/chats/" + chat + "/messages/" + first.Str("message_id") + "?for=me";

  CheckRestError(
      ApiDelete(api, "/chats/" + chat + "/messages/" + first.Str("message_id") + "?for=them", alice.access_token), 400,
      "bad_request");
  CheckRestError(ApiDelete(api, path, eve.access_token), 403, "not_member");
  CheckRestError(
      ApiDelete(api, "/chats/" + other + "/messages/" + first.Str("message_id") + "?for=me", alice.access_token), 404,
      "not_found");
  HttpResponse r = ApiDelete(api, path, alice.access_token);
  INFO(r.Describe());
  REQUIRE(r.status == 204);
  CHECK(ApiDelete(api, path, alice.access_token).status == 204);  // again: nothing new
  Json ev = WaitEvent(
      alice_laptop, "message_hidden", [&](const Json& e) { return e.Str("message_id") == first.Str("message_id"); },
      kEventMs);
  CHECK(ev.Str("chat_id") == chat);
  CHECK(ev.Has("cursor"));

  CHECK(IdsOf(MUST(History(api, alice.access_token, chat))) == std::vector<std::string>{second.Str("message_id")});
  CHECK(MUST(History(api, bob.access_token, chat)).size() == 2);  // bob still has both
  CHECK(MUST(SearchIds(api, alice.access_token, "aardvark")).empty());
  CHECK(MUST(SearchIds(api, bob.access_token, "aardvark")).size() == 1);

  // Over the WebSocket: the last message goes too, and GET /chats no longer shows it.
  SEND(alice_phone, "{\"type\":\"delete_message\",\"chat_id\":\"" + chat + "\",\"message_id\":\"" +
                        second.Str("message_id") + "\",\"for\":\"me\"}");
  auto ok = alice_phone.WaitForAny({"delete_ok", "error"}, kEventMs);
  REQUIRE(ok.ok());
  CHECK(ok->type() == "delete_ok");
  CHECK(MUST(History(api, alice.access_token, chat)).empty());
  HttpResponse chats = ApiGet(api, "/chats", alice.access_token);
  REQUIRE(chats.status == 200);
  const rapidjson::Value* list = &chats.data();
  if (list->IsObject()) list = &Get(*list, "chats");
  bool found = false;
  for (const auto& c : list->GetArray()) {
    if (StrOf(Get(c, "chat_id")) != chat) continue;
    found = true;
    CHECK(Get(c, "last_message").IsNull());
    CHECK(Get(c, "unread_count").GetInt64() == 0);
  }
  CHECK(found);
  SEND(alice_phone, "{\"type\":\"delete_message\",\"chat_id\":\"" + chat + "\",\"message_id\":\"" +
                        second.Str("message_id") + "\",\"for\":\"someone\"}");
  auto bad = alice_phone.WaitForAny({"delete_ok", "error"}, kEventMs);
  REQUIRE(bad.ok());
  CHECK(bad->Str("code") == "bad_request");

  MUST(relay->Stop());
  MUST(relay->Start());
  CHECK(MUST(History(api, alice.access_token, chat)).empty());
  CHECK(MUST(History(api, bob.access_token, chat)).size() == 2);
}

TEST_CASE("blocks and contacts across federation: a block made on one relay holds on the others",
          "[integration][social][federation]") {
  FedChain chain;
  MUST(chain.Start(Options()));
  RelayProcess& A = *chain.a;
  RelayProcess& C = *chain.c;
  TestUser alice = MUST(RegisterUser(A, "alice"));
  TestUser carol = MUST(RegisterUser(C, "carol"));
  RequireConverged(chain.all(), 15000);
  std::string chat = MUST(CreateChat(A.api(), alice.access_token, "direct", {carol.user_id}));
  WsSession alice_ws = MUST(Auth(A, alice.access_token));

  // A contact request made on C reaches alice on A; her answer reaches C.
  HttpResponse rq = ApiPost(C.api(), "/contacts/requests", UserBody(alice.user_id), carol.access_token);
  INFO(rq.Describe());
  REQUIRE(rq.status == 201);
  std::string request_id = StrOf(Get(rq.data(), "request_id"));
  WaitEvent(
      alice_ws, "contact_request", [&](const Json& e) { return e.Str("request_id") == request_id; }, kFedEventMs);
  HttpResponse acc = ApiPost(A.api(), "/contacts/requests/" + request_id + "/accept", "{}", alice.access_token);
  INFO(acc.Describe());
  REQUIRE(acc.status == 200);
  CHECK(WaitFor(
      [&] {
        return ListedUsers(C.api(), "/contacts", "contacts", carol.access_token) ==
               std::set<std::string>{alice.user_id};
      },
      kFedEventMs));

  // alice blocks carol on A; once C has the block, carol's message there is refused.
  REQUIRE(ApiPost(A.api(), "/blocks", UserBody(carol.user_id), alice.access_token).status == 201);
  CHECK(WaitFor(
      [&] {
        return ListedUsers(C.api(), "/blocks", "blocks", alice.access_token) == std::set<std::string>{carol.user_id};
      },
      kFedEventMs));
  CheckRestError(
      ApiPost(C.api(), "/chats/" + chat + "/messages", JsonBuilder().Add("content", "hey").str(), carol.access_token),
      403, "blocked");
  RequireConverged(chain.all(), 15000);
  RequireIdenticalLogs(chain.all());
  for (const RelayProcess* r : chain.all()) {
    INFO("relay " << r->name());
    CHECK(MUST(History(r->api(), alice.access_token, chat)).empty());
  }
}

}  // namespace chatd::test
