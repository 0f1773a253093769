// Full-text search (GET /api/v1/search): what it finds and for whom, edits and deletes,
// paging, bad input, and the index surviving a restart and its own deletion. The index is
// built in the background (store/search.h), so every "now it is searchable" waits on the
// condition with a deadline.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/integration/harness.h"
#include "tests/support/fed_cluster.h"

namespace chatd::test {
namespace {

constexpr int kIndexedMs = 10000;  // how long a durable message may take to become searchable

HttpResponse Search(const RelayProcess& relay, const std::string& token, const std::string& q,
                    const std::string& extra = "") {
  return ApiGet(relay.api(), "/search?q=" + UrlEncode(q) + extra, token);
}

// The message ids a search returns (empty on any error).
std::vector<std::string> Hits(const RelayProcess& relay, const std::string& token, const std::string& q,
                              const std::string& extra = "") {
  auto ids = SearchIds(relay.api(), token, q, extra);
  return ids.ok() ? *ids : std::vector<std::string>{};
}

bool HitsBecome(const RelayProcess& relay, const std::string& token, const std::string& q,
                const std::vector<std::string>& want) {
  return WaitFor([&] { return Hits(relay, token, q) == want; }, kIndexedMs, 20);
}

}  // namespace

TEST_CASE("search: my chats only, newest first, PROTOCOL.md shape, edits, deletes and leaving follow",
          "[integration][search]") {
  auto relay = StartRelay();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  TestUser carol = MUST(RegisterUser(*relay, "carol"));
  std::string team = MUST(CreateChat(relay->api(), alice.access_token, "group", {bob.user_id}, "team"));
  std::string other = MUST(CreateChat(relay->api(), carol.access_token, "direct", {alice.user_id}));

  Json lunch = MUST(PostText(relay->api(), alice.access_token, team, "Lunch at the Café at noon?"));
  Json fox = MUST(PostText(relay->api(), bob.access_token, team, "the quick brown fox"));
  Json lunch2 = MUST(PostText(relay->api(), bob.access_token, team, "lunchtime! see you there"));
  Json secret = MUST(PostText(relay->api(), carol.access_token, other, "lunch, just us two"));

  // Prefix match, diacritics folded, newest first; carol's chat with alice is not bob's.
  REQUIRE(HitsBecome(*relay, bob.access_token, "LUNCH*", {lunch2.Str("message_id"), lunch.Str("message_id")}));
  CHECK(HitsBecome(*relay, alice.access_token, "lunch*",
                   {secret.Str("message_id"), lunch2.Str("message_id"), lunch.Str("message_id")}));
  CHECK(Hits(*relay, carol.access_token, "fox").empty());
  CHECK(Hits(*relay, bob.access_token, "cafe") == std::vector<std::string>{lunch.Str("message_id")});
  // Every word must occur.
  CHECK(Hits(*relay, bob.access_token, "lunch noon") == std::vector<std::string>{lunch.Str("message_id")});
  CHECK(Hits(*relay, bob.access_token, "lunch fox").empty());

  HttpResponse r = Search(*relay, bob.access_token, "quick fox");
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  const auto& results = Get(r.data(), "results");
  REQUIRE(results.Size() == 1);
  const auto& hit = results[0];
  CHECK(StrOf(Get(hit, "message_id")) == fox.Str("message_id"));
  CHECK(StrOf(Get(hit, "chat_id")) == team);
  CHECK(StrOf(Get(hit, "sender_id")) == bob.user_id);
  CHECK(StrOf(Get(hit, "content")) == "the quick brown fox");
  CHECK(StrOf(Get(hit, "snippet")) == "the **quick** brown **fox**");
  CHECK(IsRfc3339Ms(Get(hit, "created_at")));
  CHECK(Get(r.data(), "has_more").IsFalse());
  CHECK(Get(r.data(), "next_before_id").IsNull());

  // In one chat: a member's search; not a member: not_member; no such chat: not_found.
  CHECK(Hits(*relay, alice.access_token, "lunch*", "&chat_id=" + other) ==
        std::vector<std::string>{secret.Str("message_id")});
  CheckRestError(Search(*relay, bob.access_token, "lunch", "&chat_id=" + other), 403, "not_member");
  CheckRestError(Search(*relay, bob.access_token, "lunch", "&chat_id=12345"), 404, "not_found");

  // An edit replaces the indexed text; a delete removes it.
  HttpResponse edit = ApiPatch(relay->api(), "/chats/" + team + "/messages/" + fox.Str("message_id"),
                               JsonBuilder().Add("content", "the lazy dog").str(), bob.access_token);
  INFO(edit.Describe());
  REQUIRE(edit.status == 200);
  CHECK(HitsBecome(*relay, alice.access_token, "lazy dog", {fox.Str("message_id")}));
  CHECK(Hits(*relay, alice.access_token, "fox").empty());
  HttpResponse del = ApiDelete(
      relay->api(), "/chats/" + team + "/messages/" + lunch.Str("message_id") + "?for=everyone", alice.access_token);
  INFO(del.Describe());
  REQUIRE(del.status / 100 == 2);
  CHECK(HitsBecome(*relay, bob.access_token, "lunch*", {lunch2.Str("message_id")}));

  // Once bob leaves the team, its messages are no longer his to find.
  HttpResponse leave = ApiDelete(relay->api(), "/chats/" + team + "/members/" + bob.user_id, bob.access_token);
  INFO(leave.Describe());
  REQUIRE(leave.status / 100 == 2);
  CHECK(HitsBecome(*relay, bob.access_token, "lunch*", {}));
  CHECK(Hits(*relay, alice.access_token, "lunchtime") == std::vector<std::string>{lunch2.Str("message_id")});
}

TEST_CASE("search: pages without gaps or duplicates, bad input is bad_request", "[integration][search]") {
  auto relay = StartRelay();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  std::string chat = MUST(CreateChat(relay->api(), alice.access_token, "direct", {bob.user_id}));
  WsSession ws = MUST(Auth(*relay, alice.access_token));
  std::vector<std::string> contents;
  for (int i = 0; i < 25; ++i) contents.push_back("status report number " + std::to_string(i));
  std::vector<std::string> ids = SendPipelined(ws, chat, contents);
  REQUIRE(ids.size() == 25);
  REQUIRE(WaitFor([&] { return Hits(*relay, bob.access_token, "report", "&limit=100").size() == 25; }, kIndexedMs, 20));

  std::vector<std::string> seen;
  std::string before;
  for (int page = 0; page < 3; ++page) {
    HttpResponse r =
        Search(*relay, bob.access_token, "status report", "&limit=10" + (before.empty() ? "" : "&before_id=" + before));
    INFO("page " << page << ": " << r.Describe());
    REQUIRE(r.status == 200);
    const auto& results = Get(r.data(), "results");
    CHECK(results.Size() == (page < 2 ? 10u : 5u));
    for (const auto& h : results.GetArray()) seen.push_back(StrOf(Get(h, "message_id")));
    CHECK(Get(r.data(), "has_more").GetBool() == (page < 2));
    if (page < 2) before = StrOf(Get(r.data(), "next_before_id"));
  }
  // Newest first: exactly what was sent, in reverse.
  CHECK(seen == std::vector<std::string>(ids.rbegin(), ids.rend()));

  const std::string t = bob.access_token;
  CheckRestError(ApiGet(relay->api(), "/search", t), 400, "bad_request");
  CheckRestError(Search(*relay, t, ""), 400, "bad_request");
  CheckRestError(Search(*relay, t, "?! -- ..."), 400, "bad_request");
  CheckRestError(Search(*relay, t, std::string(257, 'a')), 400, "bad_request");
  CheckRestError(Search(*relay, t, "a b c d e f g h i j k l m n o p q"), 400, "bad_request");  // 17 words
  CheckRestError(ApiGet(relay->api(), "/search?q=%FF%FE", t), 400, "bad_request");
  CheckRestError(Search(*relay, t, "report", "&limit=0"), 400, "bad_request");
  CheckRestError(Search(*relay, t, "report", "&limit=101"), 400, "bad_request");
  CheckRestError(Search(*relay, t, "report", "&before_id=x"), 400, "bad_request");
  CheckRestError(Search(*relay, t, "report", "&chat_id=-1"), 400, "bad_request");
  CheckRestError(Search(*relay, "", "report"), 401, "unauthorized");
  // FTS5 syntax in the query is just text: no error, and nothing matches it literally.
  HttpResponse syntax = Search(*relay, t, "report\" OR \"x* NEAR(");
  INFO(syntax.Describe());
  CHECK(syntax.status == 200);
  // 16 words is the most, and a word of only symbols does not count.
  CHECK(Search(*relay, t, "status report number 1 a b c d e f g h i j k l !!").status == 200);
}

TEST_CASE(
    "search: the index survives a restart and is rebuilt when deleted or damaged, store.search=false turns it off",
    "[integration][search]") {
  auto relay = StartRelay();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  std::string chat = MUST(CreateChat(relay->api(), alice.access_token, "direct", {bob.user_id}));
  Json m1 = MUST(PostText(relay->api(), alice.access_token, chat, "meet the zebra at dawn"));
  REQUIRE(HitsBecome(*relay, bob.access_token, "zebra", {m1.Str("message_id")}));

  // Killed: what was acknowledged is searchable again after the restart.
  Json m2 = MUST(PostText(relay->api(), alice.access_token, chat, "a zebra crossing"));
  relay->Kill9();
  MUST(relay->Start());
  CHECK(HitsBecome(*relay, bob.access_token, "zebra", {m2.Str("message_id"), m1.Str("message_id")}));

  // Deleted: rebuilt from the log.
  REQUIRE(MUST(relay->Stop()) == 0);
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(relay->dir() + "/search.db" + suffix);
  }
  MUST(relay->Start());
  CHECK(HitsBecome(*relay, bob.access_token, "zebra", {m2.Str("message_id"), m1.Str("message_id")}));

  // The operator sees the index caught up.
  auto status_lag = [&] {
    CommandResult st = Chatctl(CHATCTL_BIN, *relay, {"-o", "json", "status"});
    auto doc = Json::Parse(st.out);
    return st.exit_code == 0 && doc.ok() ? Dump((*doc)["search_lag"]) : "chatctl failed: " + st.err;
  };
  CHECK(WaitFor([&] { return status_lag() == "0"; }, kIndexedMs, 50));

  // Damaged: replaced by a fresh one and rebuilt; the relay starts regardless.
  REQUIRE(MUST(relay->Stop()) == 0);
  for (const char* suffix : {"-wal", "-shm"}) std::filesystem::remove(relay->dir() + "/search.db" + suffix);
  {
    std::ofstream junk(relay->dir() + "/search.db", std::ios::binary | std::ios::trunc);
    junk << std::string(8192, 'x');
  }
  MUST(relay->Start());
  CHECK(HitsBecome(*relay, bob.access_token, "zebra", {m2.Str("message_id"), m1.Str("message_id")}));

  REQUIRE(MUST(relay->Stop()) == 0);
  MUST(SetTomlKey(relay->dir() + "/chatd.toml", "store", "search", "false"));
  MUST(relay->Start());
  CheckRestError(Search(*relay, bob.access_token, "zebra"), 404, "not_found");
  CHECK(status_lag() == "null");
}

}  // namespace chatd::test
