// chatctl store verify|rebuild (chatctl(1)): verify passes on a live relay's store after
// every kind of change, and names what was tampered with (a view row, a signed body, a
// header); rebuild, with the relay stopped, repairs a view from the log.
#include "crypto/envelope.h"
#include "tests/integration/harness.h"
#include "tests/support/fed_cluster.h"

namespace chatd::test {

TEST_CASE("chatctl store verify: the log and views check out, tampering is found, rebuild repairs views",
          "[integration][store]") {
  auto relay = StartRelay();
  const HostPort& api = relay->api();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  std::string chat = MUST(CreateChat(api, alice.access_token, "group", {bob.user_id}, "verify me"));
  Json first = MUST(PostText(api, alice.access_token, chat, "first words"));
  Json second = MUST(PostText(api, bob.access_token, chat, "second words"));
  const std::string msg = "/chats/" + chat + "/messages/";
  REQUIRE(ApiPatch(api, msg + first.Str("message_id"), JsonBuilder().Add("content", "edited").str(), alice.access_token)
              .status == 200);
  REQUIRE(ApiPost(api, msg + second.Str("message_id") + "/reactions", JsonBuilder().Add("reaction_type", "👍").str(),
                  alice.access_token)
              .status < 300);
  REQUIRE(ApiDelete(api, msg + second.Str("message_id") + "?for=me", alice.access_token).status == 204);
  REQUIRE(ApiPost(api, "/blocks", JsonBuilder().Add("user_id", bob.user_id).str(), alice.access_token).status == 201);
  // A disappearing message with a reaction, erased: its reaction must not come back.
  std::string brief = MUST(CreateChat(api, alice.access_token, "group", {bob.user_id}, "brief"));
  REQUIRE(
      ApiPatch(api, "/chats/" + brief, JsonBuilder().Add("disappearing_seconds", 1).str(), alice.access_token).status ==
      200);
  Json gone = MUST(PostText(api, alice.access_token, brief, "gone soon"));
  REQUIRE(ApiPost(api, "/chats/" + brief + "/messages/" + gone.Str("message_id") + "/reactions",
                  JsonBuilder().Add("reaction_type", "🔥").str(), bob.access_token)
              .status < 300);
  REQUIRE(WaitFor(
      [&] {
        for (const LogRow& r : MUST(ReadEnvelopeLog(relay->dir() + "/chatd.db"))) {
          if (r.id == IdNum(gone.Str("message_id"))) return r.body.empty();
        }
        return false;
      },
      15000));
  REQUIRE(ApiDelete(api, "/blocks/" + bob.user_id, alice.access_token).status == 204);
  // Deleted for everyone after an edit and a reaction: its text leaves the log, a tombstone
  // stays in history (and verify below rebuilds the views from the erased log).
  const std::string third = MUST(PostText(api, alice.access_token, chat, "third words")).Str("message_id");
  REQUIRE(ApiPatch(api, msg + third, JsonBuilder().Add("content", "third words, edited").str(), alice.access_token)
              .status == 200);
  REQUIRE(
      ApiPost(api, msg + third + "/reactions", JsonBuilder().Add("reaction_type", "👀").str(), bob.access_token).status <
      300);
  REQUIRE(ApiDelete(api, msg + third + "?for=everyone", alice.access_token).status == 204);
  int erased_edits = 0, kept_edits = 0;
  for (const LogRow& r : MUST(ReadEnvelopeLog(relay->dir() + "/chatd.db"))) {
    if (r.id == IdNum(third)) CHECK(r.body.empty());
    if (r.id == IdNum(first.Str("message_id"))) CHECK_FALSE(r.body.empty());
    if (r.kind == static_cast<int>(crypto::Kind::kMsgEdit)) ++(r.body.empty() ? erased_edits : kept_edits);
  }
  CHECK(erased_edits == 1);  // the edit of the deleted message
  CHECK(kept_edits == 1);    // the edit of the first, which stays
  Json tomb = MUST(History(api, bob.access_token, chat)).front();
  CHECK(tomb.Str("message_id") == third);
  CHECK(tomb["is_deleted"].IsTrue());
  CHECK(tomb.Str("content").empty());
  CHECK(tomb["reactions"].GetArray().Size() == 0);

  // While the relay runs: one consistent snapshot.
  CommandResult ok = Chatctl(CHATCTL_BIN, *relay, {"store", "verify"});
  INFO(ok.out << ok.err);
  CHECK(ok.exit_code == 0);
  CHECK(ok.out.find("log and views OK") != std::string::npos);
  CommandResult js = Chatctl(CHATCTL_BIN, *relay, {"-o", "json", "store", "verify"});
  Json report = MUST(Json::Parse(js.out));
  CHECK(report["ok"].IsTrue());
  CHECK(report["envelopes"].GetInt64() >= 9);
  CHECK(report["origins"]["eu1"].GetInt64() == report["envelopes"].GetInt64());

  // A view row changed behind the log's back: verify finds it, rebuild repairs it.
  MUST(relay->Stop());
  const std::string db = relay->dir() + "/chatd.db";
  MUST(ExecSql(db, "UPDATE messages SET content='forged' WHERE message_id=" + second.Str("message_id")));
  CommandResult bad = Chatctl(CHATCTL_BIN, *relay, {"store", "verify"});
  INFO(bad.out << bad.err);
  CHECK(bad.exit_code == 1);
  CHECK(bad.out.find("view 'messages' differs") != std::string::npos);
  CHECK(Chatctl(CHATCTL_BIN, *relay, {"store", "rebuild"}).exit_code == 2);  // no --yes: nothing done
  CommandResult fixed = Chatctl(CHATCTL_BIN, *relay, {"store", "rebuild", "--yes"});
  INFO(fixed.out << fixed.err);
  CHECK(fixed.exit_code == 0);
  CHECK(Chatctl(CHATCTL_BIN, *relay, {"store", "verify"}).exit_code == 0);
  MUST(relay->Start());
  std::string repaired;
  for (const Json& m : MUST(History(api, bob.access_token, chat))) {
    if (m.Str("message_id") == second.Str("message_id")) repaired = m.Str("content");
  }
  CHECK(repaired == "second words");
  CommandResult running = Chatctl(CHATCTL_BIN, *relay, {"store", "rebuild", "--yes"});
  CHECK(running.exit_code == 1);  // refused while the relay runs
  CHECK(running.err.find("running") != std::string::npos);

  // A signed body altered in the log: the body hash no longer matches.
  MUST(relay->Stop());
  MUST(ExecSql(db,
               "UPDATE envelopes SET body=CAST('{\"message_type\":\"text\",\"content\":\"forged\"}' AS BLOB) "
               "WHERE id=" +
                   first.Str("message_id")));
  CommandResult forged = Chatctl(CHATCTL_BIN, *relay, {"store", "verify", "--log-only"});
  INFO(forged.out << forged.err);
  CHECK(forged.exit_code == 1);
  CHECK(forged.out.find("PROBLEM pos") != std::string::npos);
  CHECK(forged.out.find("hash") != std::string::npos);
}

}  // namespace chatd::test
