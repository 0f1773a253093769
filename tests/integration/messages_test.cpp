// Messages: REST and WebSocket sending, idempotency (client_msg_id, temp_id), real-time
// delivery to every device of every member and to no one else, and history paging.
#include "tests/integration/harness.h"
#include "tests/support/fed_cluster.h"

namespace chatd::test {
namespace {

// Every field PROTOCOL.md lists for a message in history.
void CheckHistoryMessage(const Json& m, const std::string& chat_id, const TestUser& sender,
                         const std::string& content) {
  INFO(m.text());
  CHECK(IsDecimalId(m["message_id"]));
  CHECK(m.Str("chat_id") == chat_id);
  CHECK(m.Str("sender_id") == sender.user_id);
  const auto& s = m["sender"];
  REQUIRE(s.IsObject());
  CHECK(StrOf(Get(s, "user_id")) == sender.user_id);
  CHECK(StrOf(Get(s, "username")) == sender.username);
  CHECK(s.HasMember("profile_picture_url"));
  CHECK(m.Str("message_type") == "text");
  CHECK(m.Str("content") == content);
  CHECK(m.Has("reply_to_message_id"));
  CHECK(m["reply_to_message_id"].IsNull());
  CHECK(IsRfc3339Ms(m["created_at"]));
  REQUIRE(m["is_edited"].IsBool());
  CHECK_FALSE(m["is_edited"].GetBool());
  REQUIRE(m["is_deleted"].IsBool());
  CHECK_FALSE(m["is_deleted"].GetBool());
  REQUIRE(m["reactions"].IsArray());
  CHECK(m["reactions"].Empty());
}

}  // namespace

TEST_CASE("REST message: 201 shape, client_msg_id idempotency, history shape", "[integration][messages]") {
  auto relay = StartRelay();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  std::string chat = MUST(CreateChat(relay->api(), alice.access_token, "direct", {bob.user_id}));

  std::string body = JsonBuilder().Add("message_type", "text").Add("content", "Hello team!")
                         .Null("reply_to_message_id").Add("client_msg_id", "c-1").str();
  HttpResponse r = ApiPost(relay->api(), "/chats/" + chat + "/messages", body, alice.access_token);
  INFO(r.Describe());
  REQUIRE(r.status == 201);
  REQUIRE(r.success());
  const auto& d = r.data();
  std::string mid = StrOf(Get(d, "message_id"));
  CHECK(IsDecimalId(Get(d, "message_id")));
  CHECK(StrOf(Get(d, "chat_id")) == chat);
  CHECK(StrOf(Get(d, "sender_id")) == alice.user_id);
  CHECK(StrOf(Get(d, "message_type")) == "text");
  CHECK(StrOf(Get(d, "content")) == "Hello team!");
  CHECK(IsRfc3339Ms(Get(d, "created_at")));
  CHECK(StrOf(Get(d, "delivery_status")) == "sent");
  // created_at is now-ish (the relay's clock and ours are the same machine's).
  auto created = ParseRfc3339Ms(StrOf(Get(d, "created_at")));
  REQUIRE(created.has_value());
  CHECK(std::llabs(*created - NowMs()) < 60000);

  // The same client_msg_id again: the first message, not a second one.
  HttpResponse again = ApiPost(relay->api(), "/chats/" + chat + "/messages", body, alice.access_token);
  INFO(again.Describe());
  CHECK((again.status == 200 || again.status == 201));
  CHECK(StrOf(Get(again.data(), "message_id")) == mid);
  // Even with other content: the id names the message.
  HttpResponse other = ApiPost(relay->api(), "/chats/" + chat + "/messages",
                               JsonBuilder().Add("message_type", "text").Add("content", "changed")
                                   .Add("client_msg_id", "c-1").str(),
                               alice.access_token);
  CHECK(StrOf(Get(other.data(), "message_id")) == mid);
  // Another user's client_msg_id space is their own.
  Json bobs = MUST(PostText(relay->api(), bob.access_token, chat, "hi alice", "c-1"));
  CHECK(bobs.Str("message_id") != mid);

  auto hist = MUST(History(relay->api(), bob.access_token, chat));
  REQUIRE(hist.size() == 2);
  // Newest first: bob's reply, then alice's message.
  CHECK(hist[0].Str("message_id") == bobs.Str("message_id"));
  CHECK(hist[1].Str("message_id") == mid);
  CheckHistoryMessage(hist[1], chat, alice, "Hello team!");
  CheckHistoryMessage(hist[0], chat, bob, "hi alice");
  // My own message in history carries a delivery_status.
  auto mine = MUST(History(relay->api(), alice.access_token, chat));
  REQUIRE(mine.size() == 2);
  std::string status = mine[1].Str("delivery_status");
  CHECK((status == "sent" || status == "delivered" || status == "read"));
}

TEST_CASE("WebSocket send_message: message_sent ack, repeated temp_id stored once", "[integration][messages][ws]") {
  auto relay = StartRelay();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  std::string chat = MUST(CreateChat(relay->api(), alice.access_token, "direct", {bob.user_id}));

  WsSession ws = MUST(Auth(*relay, alice.access_token));
  CHECK(ws.user_id == alice.user_id);
  CHECK(ws.auth_ok.Str("relay") == "eu1");
  CHECK(ws.auth_ok.Has("cursor"));

  Json ack = SendAndAck(ws, chat, "over the socket", "t-1");
  INFO(ack.text());
  std::string mid = ack.Str("message_id");
  CHECK(IsDecimalId(ack["message_id"]));
  CHECK(ack.Str("temp_id") == "t-1");
  CHECK(ack.Str("chat_id") == chat);
  CHECK(IsRfc3339Ms(ack["created_at"]));

  // The same temp_id again on this session: acknowledged again, same id.
  Json ack2 = SendAndAck(ws, chat, "over the socket", "t-1");
  CHECK(ack2.Str("message_id") == mid);
  // And from another session of the same device (same token).
  WsSession ws2 = MUST(Auth(*relay, alice.access_token));
  Json ack3 = SendAndAck(ws2, chat, "over the socket", "t-1");
  CHECK(ack3.Str("message_id") == mid);
  // A new temp_id is a new message.
  Json ack4 = SendAndAck(ws, chat, "second", "t-2");
  CHECK(ack4.Str("message_id") != mid);
  CHECK(*IdOf(ack4["message_id"]) > *IdOf(ack["message_id"]));

  auto hist = MUST(History(relay->api(), bob.access_token, chat));
  REQUIRE(hist.size() == 2);
  CHECK(hist[1].Str("message_id") == mid);
  CHECK(hist[0].Str("message_id") == ack4.Str("message_id"));
  CheckHistoryMessage(hist[1], chat, alice, "over the socket");
}

TEST_CASE("new_message reaches every device of every member, and no one else", "[integration][messages][ws]") {
  auto relay = StartRelay();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  TestUser carol = MUST(RegisterUser(*relay, "carol"));
  std::string chat = MUST(CreateChat(relay->api(), alice.access_token, "group", {bob.user_id}, "ab"));
  // carol has a chat of her own, so she is subscribed to something.
  std::string carols = MUST(CreateChat(relay->api(), carol.access_token, "direct", {bob.user_id}));

  // alice on two devices (a second login), bob on one, carol (not a member) on one.
  HttpResponse login = ApiPost(relay->api(), "/auth/login",
                               JsonBuilder().Add("username", "alice").Add("password", alice.password).str());
  REQUIRE(login.status == 200);
  WsSession a1 = MUST(Auth(*relay, alice.access_token));
  WsSession a2 = MUST(Auth(*relay, StrOf(Get(login.data(), "access_token"))));
  WsSession b1 = MUST(Auth(*relay, bob.access_token));
  WsSession c1 = MUST(Auth(*relay, carol.access_token));

  auto expect_new = [&](WsSession& s, const std::string& mid, const TestUser& sender,
                        const std::string& content, const char* who) {
    INFO(who);
    auto ev = s.WaitFor(
        [&](const Json& e) { return e.type() == "new_message" && StrOf(At(e.root(), "message.message_id")) == mid; },
        kEventMs);
    REQUIRE(ev.ok());
    const auto& m = (*ev)["message"];
    INFO(ev->text());
    CHECK(StrOf(Get(m, "chat_id")) == chat);
    CHECK(StrOf(Get(m, "sender_id")) == sender.user_id);
    CHECK(StrOf(Get(m, "content")) == content);
    CHECK(StrOf(Get(m, "message_type")) == "text");
    CHECK(IsRfc3339Ms(Get(m, "created_at")));
    CHECK_FALSE((*ev)["cursor"].IsNull());
  };

  // bob sends over the socket.
  Json ack = SendAndAck(b1, chat, "from bob", "b-1");
  std::string m1 = ack.Str("message_id");
  expect_new(a1, m1, bob, "from bob", "alice device 1");
  expect_new(a2, m1, bob, "from bob", "alice device 2");

  // alice sends over REST: bob and her other device get it.
  Json posted = MUST(PostText(relay->api(), alice.access_token, chat, "from alice"));
  std::string m2 = posted.Str("message_id");
  expect_new(b1, m2, alice, "from alice", "bob");
  expect_new(a2, m2, alice, "from alice", "alice device 2");
  expect_new(a1, m2, alice, "from alice", "alice device 1");

  // carol got neither: after a ping round trip and a short quiet window, nothing for chat.
  REQUIRE(c1.Barrier().ok());
  c1.Soak(300);
  for (const auto& ev : c1.pending()) {
    INFO(ev.text());
    CHECK(ev.type() != "new_message");
    CHECK(StrOf(At(ev.root(), "message.chat_id")) != chat);
  }
  // Each device saw each message once.
  for (WsSession* s : {&a1, &a2}) {
    REQUIRE(s->Barrier().ok());
    for (const auto& ev : s->pending()) {
      std::string mid = StrOf(At(ev.root(), "message.message_id"));
      CHECK((ev.type() != "new_message" || (mid != m1 && mid != m2)));
    }
  }
  // carol's own chat still works for her.
  Json cack = SendAndAck(c1, carols, "carol here", "c-1");
  CHECK_FALSE(cack.Str("message_id").empty());
}

TEST_CASE("history pages newest first with no gaps or duplicates", "[integration][messages]") {
  auto relay = StartRelay();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  std::string chat = MUST(CreateChat(relay->api(), alice.access_token, "direct", {bob.user_id}));
  WsSession ws = MUST(Auth(*relay, alice.access_token));

  std::vector<std::string> contents;
  for (int i = 0; i < 120; ++i) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "m-%03d", i);
    contents.push_back(buf);
  }
  std::vector<std::string> ids = SendPipelined(ws, chat, contents);
  std::set<std::string> sent(ids.begin(), ids.end());
  REQUIRE(sent.size() == 120);

  // limit=50: 50, 50, 20, chained by next_before_id.
  std::vector<std::string> seen;
  std::string before;
  const size_t expect_sizes[] = {50, 50, 20};
  for (int page = 0; page < 3; ++page) {
    std::string path = "/chats/" + chat + "/messages?limit=50";
    if (!before.empty()) path += "&before_id=" + before;
    HttpResponse r = ApiGet(relay->api(), path, bob.access_token);
    INFO("page " << page << ": " << r.Describe());
    REQUIRE(r.status == 200);
    const auto& msgs = Get(r.data(), "messages");
    REQUIRE(msgs.IsArray());
    CHECK(msgs.Size() == expect_sizes[page]);
    REQUIRE(Get(r.data(), "has_more").IsBool());
    CHECK(Get(r.data(), "has_more").GetBool() == (page < 2));
    for (const auto& m : msgs.GetArray()) seen.push_back(StrOf(Get(m, "message_id")));
    if (page < 2) {
      REQUIRE(IsDecimalId(Get(r.data(), "next_before_id")));
      before = StrOf(Get(r.data(), "next_before_id"));
      // Paging continues below the last message of this page.
      CHECK(*IdOf(Get(r.data(), "next_before_id")) <= *IdOf(Get(msgs[msgs.Size() - 1], "message_id")));
    }
  }
  REQUIRE(seen.size() == 120);
  std::set<std::string> seen_set(seen.begin(), seen.end());
  CHECK(seen_set.size() == 120);  // no duplicates
  CHECK(seen_set == sent);        // no gaps
  // Newest first, and the newest is the last sent: one sender's messages keep their order.
  for (size_t i = 1; i < seen.size(); ++i) CHECK(IdNum(seen[i - 1]) > IdNum(seen[i]));
  std::vector<std::string> reversed(ids.rbegin(), ids.rend());
  CHECK(seen == reversed);

  // An odd page size walks the same list.
  auto all = MUST(History(relay->api(), alice.access_token, chat, 17));
  CHECK(IdsOf(all) == reversed);
  for (size_t i = 0; i < all.size(); ++i) CHECK(all[i].Str("content") == contents[119 - i]);
  // Below the oldest message there is nothing.
  HttpResponse end = ApiGet(relay->api(), "/chats/" + chat + "/messages?limit=50&before_id=" + ids[0],
                            alice.access_token);
  REQUIRE(end.status == 200);
  CHECK(Get(end.data(), "messages").IsArray());
  CHECK(Get(end.data(), "messages").Empty());
  CHECK(Get(end.data(), "has_more").IsFalse());
}

}  // namespace chatd::test

namespace chatd::test {
namespace {

// Posts messages for at least `min_ms` (and at least 40) and returns how many, with the
// /metrics deltas of frames and socket writes to clients, once bob and carol have each
// received all of them, checked whole, once each and in order. One at a time over REST,
// or `pipelined` over alice's WebSocket with 16 sends in flight, so that the receivers get
// frames faster than a hold's threshold however slow the machine is at the moment.
struct BurstCounts {
  int posts = 0;
  int64_t frames = 0, writes = 0;
};

BurstCounts PostBurst(RelayProcess& relay, int64_t min_ms, bool pipelined) {
  TestUser alice = MUST(RegisterUser(relay, "alice"));
  TestUser bob = MUST(RegisterUser(relay, "bob"));
  TestUser carol = MUST(RegisterUser(relay, "carol"));
  std::string chat = MUST(CreateChat(relay.api(), alice.access_token, "group", {bob.user_id, carol.user_id}, "burst"));
  WsSession b = MUST(Auth(relay, bob.access_token));
  WsSession c = MUST(Auth(relay, carol.access_token));
  REQUIRE(b.Barrier().ok());
  REQUIRE(c.Barrier().ok());
  b.ClearPending();
  c.ClearPending();
  BurstCounts counts;
  const int64_t frames0 = MUST(MetricValue(relay, "chatd_ws_frames_out_total"));
  const int64_t writes0 = MUST(MetricValue(relay, "chatd_ws_writes_total"));
  const int64_t start = MonoMs();
  std::optional<WsSession> a;
  if (pipelined) a.emplace(MUST(Auth(relay, alice.access_token)));
  while (counts.posts < 5000 && (counts.posts < 40 || MonoMs() - start < min_ms)) {
    if (pipelined) {
      std::vector<std::string> contents;
      for (int i = 0; i < 40; ++i) contents.push_back("burst " + std::to_string(counts.posts + i));
      SendPipelined(*a, chat, contents, "b" + std::to_string(counts.posts));
      counts.posts += 40;
    } else {
      MUST(PostText(relay.api(), alice.access_token, chat, "burst " + std::to_string(counts.posts)));
      counts.posts++;
    }
  }
  for (WsSession* s : {&b, &c}) {
    for (int i = 0; i < counts.posts; ++i) {
      auto ev = s->WaitFor("new_message", kEventMs);
      if (!ev.ok()) FAIL("message " << i << " of " << counts.posts << " did not arrive: " << ev.status().message());
      INFO(ev->text());
      REQUIRE(StrOf(At(ev->root(), "message.content")) == "burst " + std::to_string(i));
    }
  }
  // The counters are bumped after the write that delivered the last frames: wait for them.
  WaitFor([&] { return MUST(MetricValue(relay, "chatd_ws_frames_out_total")) - frames0 >= 2 * counts.posts; }, 5000);
  counts.frames = MUST(MetricValue(relay, "chatd_ws_frames_out_total")) - frames0;
  counts.writes = MUST(MetricValue(relay, "chatd_ws_writes_total")) - writes0;
  // Nothing more: no duplicate of any message.
  REQUIRE(b.Barrier().ok());
  REQUIRE(c.Barrier().ok());
  CHECK(b.CountPending("new_message") == 0);
  CHECK(c.CountPending("new_message") == 0);
  return counts;
}

}  // namespace

TEST_CASE("write coalescing under load: a stream arrives whole and in order, in fewer writes",
          "[integration][messages][ws]") {
  // "Under load" from the first frame (write_hold_above = 0), holding up to 100 ms: a
  // session that got 3 or more frames in the last 100 ms is written at most every 100 ms,
  // so after the first 100 ms the stream (pipelined WebSocket sends for 500 ms) reaches
  // each of the two receivers in a write per 100 ms.
  RelayOptions held = Options();
  held.config = {{"gateway", "write_hold_ms", "100"}, {"gateway", "write_hold_above", "0"}};
  auto relay = StartRelay(held);
  BurstCounts with_hold = PostBurst(*relay, 500, /*pipelined=*/true);
  INFO("held: " << with_hold.posts << " posts, " << with_hold.frames << " frames in " << with_hold.writes << " writes");
  CHECK(with_hold.frames >= 2 * with_hold.posts);
  CHECK(with_hold.writes <= with_hold.posts);  // half of the frames, or fewer

  // Without coalescing every post reaches each receiver in a write of its own.
  RelayOptions direct = Options();
  direct.config = {{"gateway", "write_hold_ms", "0"}};
  auto relay2 = StartRelay(direct);
  BurstCounts without = PostBurst(*relay2, 0, /*pipelined=*/false);
  INFO("direct: " << without.posts << " posts, " << without.frames << " frames in " << without.writes << " writes");
  CHECK(without.frames >= 2 * without.posts);
  CHECK(without.writes >= without.posts);
}

}  // namespace chatd::test
