// Unit tests: the store's log, views, queries and rebuild.
#include "store/store.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>

#include "base/json.h"
#include "base/time.h"
#include "crypto/envelope.h"
#include "relay/events.h"
#include "store/views.h"
#include "tests/support/temp_dir.h"

using namespace chatd;
using crypto::Kind;

namespace {

using chatd::test::TempDir;

class LogBuilder {
 public:
  explicit LogBuilder(store::Writer& w) : w_(w), key_(crypto::KeyPair::Generate()) {}
  uint64_t Append(Kind kind, uint64_t chat_id, uint64_t author, std::string body, uint64_t id = 0) {
    crypto::Envelope e = Make(kind, chat_id, author, std::move(body), id);
    auto pos = w_.Append(e);
    REQUIRE(pos.ok());
    last_ = e;
    return e.id;
  }
  // The next envelope, sealed, not appended.
  crypto::Envelope Make(Kind kind, uint64_t chat_id, uint64_t author, std::string body, uint64_t id = 0) {
    crypto::Envelope e;
    e.origin = "eu1";
    e.seq = ++seq_;
    e.id = id ? id : next_id_++;
    e.chat_id = chat_id;
    e.author = author;
    e.kind = kind;
    e.created_at = 1795000000000 + static_cast<int64_t>(seq_);
    e.body = std::move(body);
    REQUIRE(crypto::Seal(e, key_).ok());
    return e;
  }
  crypto::Envelope last_;

 private:
  store::Writer& w_;
  crypto::KeyPair key_;
  uint64_t seq_ = 0;
  uint64_t next_id_ = 1000;
};

// User 1000 "alice" and group chat 2000 with her as its admin (in the caller's transaction).
void AliceAndHerGroup(LogBuilder& b) {
  b.Append(Kind::kUserCreate, 0, 1000, R"({"username":"alice"})", 1000);
  b.Append(Kind::kChatCreate, 2000, 1000,
           R"({"chat_type":"group","chat_name":"first","members":[{"user_id":"1000","role":"admin"}]})", 2000);
}

std::string Snapshot(store::Queries& q, uint64_t chat_id, uint64_t user) {
  std::string out;
  auto chat = q.Chat(chat_id, true);
  REQUIRE(chat.ok());
  REQUIRE(chat.value());
  out += (*chat)->chat_type + "|" + (*chat)->chat_name + "|";
  for (auto& m : (*chat)->members) out += std::to_string(m.user_id) + ":" + m.role + ",";
  auto hist = q.History(chat_id, 0, 1000);
  REQUIRE(hist.ok());
  for (auto& m : *hist) {
    out += std::to_string(m.message_id) + "=" + m.content + (m.deleted ? "[d]" : "") + (m.edited_at ? "[e]" : "");
    for (auto& r : m.reactions) out += "(" + r.reaction_type + std::to_string(r.users.size()) + ")";
    out += ";";
  }
  auto chats = q.ChatsOf(user);
  REQUIRE(chats.ok());
  out += "|chats=" + std::to_string(chats->size());
  return out;
}

}  // namespace

TEST_CASE("store: envelopes build the views, queries page and filter by membership", "[store]") {
  TempDir dir2;
  auto store2 = store::Store::Open(dir2.path, 2, true);
  REQUIRE(store2.ok());
  auto& w2 = (*store2)->writer();
  LogBuilder b(w2);
  REQUIRE(w2.Begin().ok());
  // user_create's author is the new user's id, which is its envelope id (as the core does).
  uint64_t alice = 1000, bob = 1001, carol = 1002;
  b.Append(Kind::kUserCreate, 0, alice, R"({"username":"alice"})", alice);
  b.Append(Kind::kUserCreate, 0, bob, R"({"username":"bob"})", bob);
  b.Append(Kind::kUserCreate, 0, carol, R"({"username":"carol"})", carol);
  uint64_t chat = 2000;
  b.Append(Kind::kChatCreate, chat, alice,
           R"({"chat_type":"group","chat_name":"team","members":[{"user_id":"1000","role":"admin"},{"user_id":"1001","role":"member"}]})",
           chat);
  std::vector<uint64_t> msgs;
  for (int i = 0; i < 25; ++i) {
    msgs.push_back(b.Append(Kind::kMsgPost, chat, i % 2 ? bob : alice,
                            R"({"message_type":"text","content":"m)" + std::to_string(i) + R"("})", 3000 + i));
  }
  b.Append(Kind::kMsgEdit, chat, alice, R"({"message_id":"3000","content":"edited"})", 4000);
  b.Append(Kind::kMsgDelete, chat, bob, R"({"message_id":"3001"})", 4001);
  b.Append(Kind::kReaction, chat, bob, R"({"message_id":"3002","reaction_type":"👍","op":"add"})", 4002);
  b.Append(Kind::kReaction, chat, alice, R"({"message_id":"3002","reaction_type":"👍","op":"add"})", 4003);
  b.Append(Kind::kReaction, chat, alice, R"({"message_id":"3002","reaction_type":"👍","op":"remove"})", 4004);
  REQUIRE(w2.Commit().ok());

  auto user = w2.UserByHandle("alice@eu1");
  REQUIRE(user.ok());
  REQUIRE(user.value());
  CHECK((*user)->user_id == alice);

  // History pages newest first with no gaps or duplicates.
  std::vector<uint64_t> seen;
  uint64_t before = 0;
  for (;;) {
    auto page = w2.History(chat, before, 10);
    REQUIRE(page.ok());
    if (page->empty()) break;
    for (auto& m : *page) seen.push_back(m.message_id);
    before = page->back().message_id;
  }
  std::vector<uint64_t> expected(msgs.rbegin(), msgs.rend());
  CHECK(seen == expected);
  // Bounded by a log position (the durable one): later messages are not shown yet.
  {
    auto all = w2.History(chat, 0, 1000);
    REQUIRE(all.ok());
    REQUIRE(all->size() >= 2);
    uint64_t cut = (*all)[1].pos;  // the second newest message's position
    auto bounded = w2.History(chat, 0, 1000, cut);
    REQUIRE(bounded.ok());
    REQUIRE(bounded->size() == all->size() - 1);
    for (const auto& m : *bounded) CHECK(m.pos <= cut);
    CHECK(bounded->front().message_id == (*all)[1].message_id);
  }

  auto m0 = w2.Message(3000);
  REQUIRE(m0.ok());
  CHECK((*m0)->content == "edited");
  CHECK((*m0)->edited_at != 0);
  auto m1 = w2.Message(3001);
  CHECK((*m1)->deleted);
  auto page = w2.History(chat, 3003, 1);
  REQUIRE(page->size() == 1);
  REQUIRE(page->front().reactions.size() == 1);
  CHECK(page->front().reactions[0].users == std::vector<uint64_t>{bob});

  // Sync reads only chats the user belongs to (and the user's own system events).
  auto for_bob = w2.EnvelopesSince(bob, 0, 1000);
  REQUIRE(for_bob.ok());
  auto for_carol = w2.EnvelopesSince(carol, 0, 1000);
  REQUIRE(for_carol.ok());
  CHECK(for_carol->size() == 1);  // only carol's own user_create
  CHECK(for_bob->size() == 1 + 1 + 25 + 5);
  uint64_t prev = 0;
  for (auto& row : *for_bob) {
    CHECK(row.pos > prev);
    prev = row.pos;
  }

  // The log is the source of truth: rebuilding the views gives the same answers.
  std::string before_rebuild = Snapshot(w2, chat, alice);
  REQUIRE(w2.Begin().ok());
  REQUIRE(w2.RebuildViews().ok());
  REQUIRE(w2.Commit().ok());
  CHECK(Snapshot(w2, chat, alice) == before_rebuild);

  // A reader connection sees the committed state.
  auto lease = (*store2)->readers().Acquire();
  REQUIRE(lease.ok());
  CHECK(Snapshot((*lease)->q(), chat, alice) == before_rebuild);

  auto vec = w2.Vector();
  REQUIRE(vec.ok());
  REQUIRE(vec->size() == 1);
  CHECK((*vec)[0].first == "eu1");
  CHECK((*vec)[0].second == 3 + 1 + 25 + 5);
}

TEST_CASE("store: an envelope appended as invalid stays out of the views, also after a rebuild", "[store]") {
  TempDir dir;
  auto store = store::Store::Open(dir.path, 1, true);
  REQUIRE(store.ok());
  auto& w = (*store)->writer();
  REQUIRE(w.Begin().ok());
  LogBuilder b(w);
  AliceAndHerGroup(b);
  // A post by someone who is not a member, kept in the log (signed) but invalid.
  crypto::Envelope e;
  e.origin = "us1";
  e.seq = 1;
  e.id = 9000;
  e.chat_id = 2000;
  e.author = 4242;
  e.kind = Kind::kMsgPost;
  e.created_at = 1795000000100;
  e.body = R"({"message_type":"text","content":"not a member"})";
  REQUIRE(crypto::Seal(e, crypto::KeyPair::Generate()).ok());
  REQUIRE(w.Append(e, /*apply_views=*/false, 0, /*valid=*/false).ok());
  b.Append(Kind::kMsgPost, 2000, 1000, R"({"message_type":"text","content":"hello"})", 9001);
  REQUIRE(w.Commit().ok());
  auto contents = [&] {
    auto h = w.History(2000, 0, 10);
    REQUIRE(h.ok());
    std::vector<std::string> out;
    for (const auto& m : *h) out.push_back(m.content);
    return out;
  };
  CHECK(contents() == std::vector<std::string>{"hello"});
  REQUIRE(w.Begin().ok());
  REQUIRE(w.RebuildViews().ok());
  REQUIRE(w.Commit().ok());
  CHECK(contents() == std::vector<std::string>{"hello"});
  auto n = w.CountEnvelopes();
  REQUIRE(n.ok());
  CHECK(*n == 4);  // the invalid one is still in the log
}

TEST_CASE("store: a duplicate (origin, seq) is refused and changes nothing", "[store]") {
  TempDir dir;
  auto store = store::Store::Open(dir.path, 1, true);
  REQUIRE(store.ok());
  auto& w = (*store)->writer();
  LogBuilder b(w);
  REQUIRE(w.Begin().ok());
  b.Append(Kind::kUserCreate, 0, 1000, R"({"username":"alice"})", 1000);
  REQUIRE(w.Commit().ok());
  crypto::Envelope again = b.last_;
  REQUIRE(w.Begin().ok());
  auto dup = w.Append(again);
  REQUIRE_FALSE(dup.ok());
  CHECK(dup.status().code() == Code::kConflict);
  REQUIRE(w.Rollback().ok());
  CHECK(*w.CountEnvelopes() == 1);
}

TEST_CASE("store: disappearing messages are hidden when due and erased by ExpireDue, bad expires_at is ignored",
          "[store]") {
  TempDir dir;
  auto store = store::Store::Open(dir.path, 1, true);
  REQUIRE(store.ok());
  auto& w = (*store)->writer();
  const int64_t now = NowMs();
  const int64_t day = 86400 * 1000LL;
  uint64_t alice = 1000, chat = 2000;
  REQUIRE(w.Begin().ok());
  LogBuilder b(w);
  AliceAndHerGroup(b);
  auto post_at = [&](uint64_t id, auto expiry) {  // expiry(created_at) -> the body's expires_at text
    // LogBuilder stamps created_at = 1795000000000 + seq; seq is the next one.
    int64_t created = 1795000000000 + static_cast<int64_t>(b.last_.seq + 1);
    b.Append(
        Kind::kMsgPost, chat, alice,
        R"({"message_type":"text","content":"m)" + std::to_string(id) + R"(","expires_at":)" + expiry(created) + "}",
        id);
    REQUIRE(b.last_.created_at == created);
  };
  post_at(3000, [](int64_t t) { return std::to_string(t + 1000); });                // due long ago
  post_at(3001, [&](int64_t) { return std::to_string(now + 3600 * 1000); });        // due in an hour
  post_at(3002, [](int64_t t) { return std::to_string(t); });                       // not after created_at
  post_at(3003, [&](int64_t t) { return std::to_string(t + 366 * day); });          // beyond a year
  post_at(3004, [](int64_t t) { return "\"" + std::to_string(t + 1000) + "\""; });  // not a number
  b.Append(Kind::kMsgEdit, chat, alice,
           R"({"message_id":"3001","content":"e","expires_at":)" + std::to_string(now + 3600 * 1000) + "}", 4000);
  // An edit of 3000, due when 3000 is.
  b.Append(Kind::kMsgEdit, chat, alice,
           R"({"message_id":"3000","content":"e0","expires_at":)" + std::to_string(1795000000000 + 3 + 1000) + "}",
           4001);
  REQUIRE(w.Commit().ok());

  auto ids = [&] {
    std::vector<uint64_t> out;
    auto hist = w.History(chat, 0, 100);
    REQUIRE(hist.ok());
    for (const auto& m : *hist) out.push_back(m.message_id);
    return out;
  };
  auto erased = [&](uint64_t id) {
    auto st = w.db().Prepare("SELECT body IS NULL AND salt IS NULL FROM envelopes WHERE id=?");
    REQUIRE(st.ok());
    st->Bind(1, id);
    REQUIRE(*st->Step());
    return st->Int(0) == 1;
  };
  // Due but not yet erased: already hidden from reads.
  CHECK(ids() == std::vector<uint64_t>{3004, 3003, 3002, 3001});
  CHECK_FALSE(w.Message(3000)->has_value());
  CHECK((*w.Message(3001))->expires_at == now + 3600 * 1000);
  CHECK((*w.Message(3002))->expires_at == 0);
  CHECK(*w.NextExpiry() == 1795000000000 + 3 + 1000);
  // Events replayed to a client (sync) leave out what is due: the post and its edit.
  std::map<uint64_t, std::string> events;
  auto rows = w.EnvelopesSince(alice, 0, 100);
  REQUIRE(rows.ok());
  for (const auto& row : *rows) events[row.env.id] = events::EventFor(row, w);
  CHECK(events.at(3000).empty());
  CHECK(events.at(4001).empty());
  CHECK_THAT(events.at(3001), Catch::Contains("\"expires_at\""));
  CHECK_THAT(events.at(4000), Catch::Contains("message_edited"));
  CHECK_THAT(events.at(3002), Catch::Contains("new_message"));

  REQUIRE(w.Begin().ok());
  CHECK(*w.ExpireDue(now, 100) == 2);
  REQUIRE(w.Commit().ok());
  CHECK(erased(3000));
  CHECK(erased(4001));
  CHECK_FALSE(erased(3001));
  CHECK(*w.NextExpiry() == now + 3600 * 1000);
  REQUIRE(w.Begin().ok());
  CHECK(*w.ExpireDue(now, 100) == 0);                // nothing else is due yet
  CHECK(*w.ExpireDue(now + 3600 * 1000, 1) == 1);    // bounded: one at a time
  CHECK(*w.ExpireDue(now + 3600 * 1000, 100) == 1);  // the post and its edit
  REQUIRE(w.Commit().ok());
  CHECK(erased(3001));
  CHECK(erased(4000));
  CHECK(*w.NextExpiry() == 0);
  for (uint64_t id : {3002, 3003, 3004}) CHECK_FALSE(erased(id));
  CHECK(ids() == std::vector<uint64_t>{3004, 3003, 3002});

  // The views rebuilt from the erased log are the same.
  REQUIRE(w.Begin().ok());
  REQUIRE(w.RebuildViews().ok());
  REQUIRE(w.Commit().ok());
  CHECK(ids() == std::vector<uint64_t>{3004, 3003, 3002});
  CHECK(*w.NextExpiry() == 0);
}

namespace {

// Every row of a table, in a stable order, as text (views compared across stores).
std::string Rows(store::Writer& w, const std::string& sql) {
  auto st = w.db().Prepare(sql);
  REQUIRE(st.ok());
  std::string out;
  for (;;) {
    auto r = st->Step();
    REQUIRE(r.ok());
    if (!r.value()) break;
    for (int c = 0; c < st->Columns(); ++c) out += std::string(st->TextView(c)) + "|";
    out += "\n";
  }
  return out;
}

bool BodyErased(store::Writer& w, uint64_t id) {
  auto st = w.db().Prepare("SELECT body IS NULL AND salt IS NULL FROM envelopes WHERE id=?");
  REQUIRE(st.ok());
  st->Bind(1, id);
  auto r = st->Step();
  REQUIRE(r.ok());
  REQUIRE(r.value());
  return st->Int(0) == 1;
}

const char* kMessageRows = "SELECT * FROM messages ORDER BY message_id";
const char* kEraseViews = "SELECT 'e', * FROM message_edits UNION ALL SELECT 'p', message_id, pos FROM erased_posts";

}  // namespace

TEST_CASE(
    "store: delete for everyone erases the post and its edits, the tombstone is the same live, rebuilt, "
    "and from an erased post",
    "[store]") {
  TempDir dir, dir2;
  auto store = store::Store::Open(dir.path, 1, true);
  REQUIRE(store.ok());
  auto& w = (*store)->writer();
  const uint64_t chat = 2000, alice = 1000;
  REQUIRE(w.Begin().ok());
  LogBuilder b(w);
  AliceAndHerGroup(b);
  b.Append(Kind::kMsgPost, chat, alice, R"({"message_type":"image","content":"secret","encrypted":true})", 3000);
  crypto::Envelope post = b.last_;
  b.Append(Kind::kMsgEdit, chat, alice, R"({"message_id":"3000","content":"secret two"})", 4000);
  b.Append(Kind::kReaction, chat, alice, R"({"message_id":"3000","reaction_type":"x","op":"add"})", 4001);
  b.Append(Kind::kMsgPost, chat, alice, R"({"message_type":"text","content":"kept"})", 3001);
  b.Append(Kind::kMsgDelete, chat, alice, R"({"message_id":"3000","for":"everyone"})", 4002);
  crypto::Envelope del = b.last_;
  // A concurrent edit that arrives after the delete: applies to nothing, its text erased too.
  b.Append(Kind::kMsgEdit, chat, alice, R"({"message_id":"3000","content":"secret three"})", 4003);
  b.Append(Kind::kReaction, chat, alice, R"({"message_id":"3000","reaction_type":"y","op":"add"})", 4004);
  REQUIRE(w.Commit().ok());

  for (uint64_t id : {3000, 4000, 4003}) {
    INFO("envelope " << id);
    CHECK(BodyErased(w, id));
  }
  CHECK_FALSE(BodyErased(w, 3001));
  CHECK_FALSE(BodyErased(w, 4002));  // the delete itself is the signed redaction
  auto m = w.Message(3000);
  REQUIRE(m.ok());
  REQUIRE(m.value());
  CHECK((*m)->deleted);
  CHECK((*m)->content.empty());
  CHECK((*m)->message_type == "text");
  CHECK((*m)->edited_at == 0);
  CHECK((*m)->reactions.empty());
  CHECK((*w.Message(3001))->content == "kept");
  const std::string live = Rows(w, kMessageRows), live_erase = Rows(w, kEraseViews);
  CHECK(live_erase.empty());
  CHECK(Rows(w, "SELECT * FROM reactions").empty());

  // Rebuilt from the erased log: the same rows.
  REQUIRE(w.Begin().ok());
  REQUIRE(w.RebuildViews().ok());
  REQUIRE(w.Commit().ok());
  CHECK(Rows(w, kMessageRows) == live);
  CHECK(Rows(w, kEraseViews) == live_erase);

  // Another relay that got the post only after it was erased (a stub), then the delete.
  auto store2 = store::Store::Open(dir2.path, 1, true);
  REQUIRE(store2.ok());
  auto& w2 = (*store2)->writer();
  REQUIRE(w2.Begin().ok());
  LogBuilder b2(w2);
  AliceAndHerGroup(b2);
  crypto::Envelope stub = post;
  stub.body.clear();
  stub.salt.clear();
  REQUIRE(stub.erased());
  REQUIRE(w2.Append(stub).ok());
  CHECK(Rows(w2, kEraseViews) == "p|3000|" + std::to_string(*w2.MaxPos()) + "|\n");
  auto found = w2.MessageFacts(3000);
  REQUIRE(found.ok());
  REQUIRE(found.value());
  CHECK((*found)->sender_id == alice);
  CHECK((*found)->chat_id == chat);
  REQUIRE(w2.Append(del).ok());
  REQUIRE(w2.Commit().ok());
  auto tomb = w2.Message(3000);
  REQUIRE(tomb.ok());
  REQUIRE(tomb.value());
  CHECK((*tomb)->deleted);
  CHECK((*tomb)->created_at == post.created_at);
  CHECK(Rows(w2, kEraseViews).empty());
}

TEST_CASE("store: a post deleted in the batch that made it is appended erased", "[store]") {
  TempDir dir;
  auto store = store::Store::Open(dir.path, 1, true);
  REQUIRE(store.ok());
  auto& w = (*store)->writer();
  REQUIRE(w.Begin().ok());
  LogBuilder b(w);
  AliceAndHerGroup(b);
  REQUIRE(w.Commit().ok());
  auto make = [&](Kind kind, uint64_t id, std::string body) { return b.Make(kind, 2000, 1000, std::move(body), id); };
  // As the core does it: views at emit time with reserved positions, the signed envelopes
  // appended at the end of the batch.
  const uint64_t p = *w.MaxPos();
  auto post = make(Kind::kMsgPost, 3000, R"({"message_type":"text","content":"oops"})");
  auto edit = make(Kind::kMsgEdit, 3001, R"({"message_id":"3000","content":"oops!"})");
  auto del = make(Kind::kMsgDelete, 3002, R"({"message_id":"3000","for":"everyone"})");
  auto other = make(Kind::kMsgPost, 3003, R"({"message_type":"text","content":"fine"})");
  REQUIRE(w.Begin().ok());
  REQUIRE(w.ApplyViews(post, p + 1).ok());
  REQUIRE(w.ApplyViews(edit, p + 2).ok());
  REQUIRE(w.ApplyViews(del, p + 3).ok());
  REQUIRE(w.ApplyViews(other, p + 4).ok());
  int n = 1;
  for (const auto* e : {&post, &edit, &del, &other}) REQUIRE(w.Append(*e, false, p + n++).ok());
  REQUIRE(w.Commit().ok());
  CHECK(BodyErased(w, 3000));
  CHECK(BodyErased(w, 3001));
  CHECK_FALSE(BodyErased(w, 3002));
  CHECK_FALSE(BodyErased(w, 3003));
  CHECK((*w.Message(3000))->deleted);
  // A rolled-back batch leaves nothing pending for the positions the next batch reuses.
  REQUIRE(w.Begin().ok());
  auto post2 = make(Kind::kMsgPost, 3004, R"({"message_type":"text","content":"again"})");
  auto del2 = make(Kind::kMsgDelete, 3005, R"({"message_id":"3004","for":"everyone"})");
  REQUIRE(w.ApplyViews(post2, p + 5).ok());
  REQUIRE(w.ApplyViews(del2, p + 6).ok());
  REQUIRE(w.Rollback().ok());
  REQUIRE(w.Begin().ok());
  auto next = make(Kind::kMsgPost, 3006, R"({"message_type":"text","content":"must stay"})");
  REQUIRE(w.ApplyViews(next, p + 5).ok());
  REQUIRE(w.Append(next, false, p + 5).ok());
  REQUIRE(w.Commit().ok());
  CHECK_FALSE(BodyErased(w, 3006));
}

TEST_CASE("store: concurrent chat updates end the same in either order (last writer wins by id, per field)",
          "[store]") {
  auto chat_after = [](bool newer_first) {
    TempDir dir;
    auto store = store::Store::Open(dir.path, 1, true);
    REQUIRE(store.ok());
    auto& w = (*store)->writer();
    LogBuilder b(w);
    REQUIRE(w.Begin().ok());
    AliceAndHerGroup(b);
    auto older = [&] {
      b.Append(Kind::kChatUpdate, 2000, 1000, R"({"chat_name":"older","disappearing_seconds":60})", 5000);
    };
    auto newer = [&] {
      b.Append(Kind::kChatUpdate, 2000, 1000, R"({"chat_name":"newer","chat_description":"d"})", 5001);
    };
    if (newer_first) {
      newer();
      older();
    } else {
      older();
      newer();
    }
    REQUIRE(w.Commit().ok());
    auto chat = w.Chat(2000, false);
    REQUIRE(chat.ok());
    REQUIRE(chat.value());
    return (*chat)->chat_name + "|" + (*chat)->chat_description + "|" + std::to_string((*chat)->disappearing_seconds);
  };
  CHECK(chat_after(false) == "newer|d|60");
  CHECK(chat_after(true) == "newer|d|60");
}

TEST_CASE("store: blocks and contacts end the same in either order, and after a rebuild", "[store][social]") {
  // alice (1000) and bob (1001): bob's request 3000, alice blocks bob (3001); concurrently
  // alice accepts (3003) and bob removes the contact (3004), the newer one; alice unblocks
  // (3005) while an older block (3002) arrives late.
  auto state_after = [](bool reversed, bool rebuild) {
    TempDir dir;
    auto store = store::Store::Open(dir.path, 1, true);
    REQUIRE(store.ok());
    auto& w = (*store)->writer();
    LogBuilder b(w);
    REQUIRE(w.Begin().ok());
    b.Append(Kind::kUserCreate, 0, 1000, R"({"username":"alice"})", 1000);
    b.Append(Kind::kUserCreate, 0, 1001, R"({"username":"bob"})", 1001);
    b.Append(Kind::kContactRequest, 0, 1001, R"({"user_id":"1000"})", 3000);
    b.Append(Kind::kBlock, 0, 1000, R"({"user_id":"1001"})", 3001);
    std::vector<std::function<void()>> racing = {
        [&] { b.Append(Kind::kContactAccept, 0, 1000, R"({"request_id":"3000"})", 3003); },
        [&] { b.Append(Kind::kContactRemove, 0, 1001, R"({"user_id":"1000"})", 3004); },
        [&] { b.Append(Kind::kUnblock, 0, 1000, R"({"user_id":"1001"})", 3005); },
        [&] { b.Append(Kind::kBlock, 0, 1000, R"({"user_id":"1001"})", 3002); },
    };
    if (reversed) std::reverse(racing.begin(), racing.end());
    for (auto& f : racing) f();
    REQUIRE(w.Commit().ok());
    if (rebuild) {
      REQUIRE(w.Begin().ok());
      REQUIRE(w.RebuildViews().ok());
      REQUIRE(w.Commit().ok());
    }
    auto blocked = w.Blocked(1000, 1001);
    auto contact = w.IsContact(1000, 1001);
    auto rq = w.ContactRequest(3000);
    auto pending = w.PendingRequestsOf(1000);
    auto events = w.BlockEvents(1000, 1001);
    REQUIRE((blocked.ok() && contact.ok() && rq.ok() && rq.value() && pending.ok() && events.ok()));
    return std::to_string(*blocked) + "|" + std::to_string(*contact) + "|" + rq.value()->status + "|" +
           std::to_string(pending->size()) + "|" + std::to_string(events->size());
  };
  // Unblocked (3005 is the newest), not contacts (the removal 3004 is newer than the accept),
  // the request accepted; three block events kept for validity checks.
  CHECK(state_after(false, false) == "0|0|accepted|0|3");
  CHECK(state_after(true, false) == "0|0|accepted|0|3");
  CHECK(state_after(true, true) == "0|0|accepted|0|3");
}

namespace {

// alice's profile and privacy after her user_create and the racing envelopes (kind, body,
// id) applied in the order given or reversed, and optionally rebuilt from the log:
// "first_name|status_message|last_seen|profile_photo|about|groups|read_receipts".
std::string UserAfterRace(const std::vector<std::tuple<Kind, const char*, uint64_t>>& racing, bool reversed,
                          bool rebuild) {
  TempDir dir;
  auto store = store::Store::Open(dir.path, 1, true);
  REQUIRE(store.ok());
  auto& w = (*store)->writer();
  LogBuilder b(w);
  REQUIRE(w.Begin().ok());
  b.Append(Kind::kUserCreate, 0, 1000, R"({"username":"alice","first_name":"Al"})", 1000);
  auto order = racing;
  if (reversed) std::reverse(order.begin(), order.end());
  for (const auto& [kind, body, id] : order) b.Append(kind, 0, 1000, body, id);
  REQUIRE(w.Commit().ok());
  if (rebuild) {
    REQUIRE(w.Begin().ok());
    REQUIRE(w.RebuildViews().ok());
    REQUIRE(w.Commit().ok());
  }
  auto u = w.UserById(1000);
  REQUIRE((u.ok() && u.value()));
  const store::Privacy& p = u.value()->privacy;
  return u.value()->first_name + "|" + u.value()->status_message + "|" + p.last_seen + "|" + p.profile_photo + "|" +
         p.about + "|" + p.groups + "|" + (p.read_receipts ? "on" : "off");
}

}  // namespace

TEST_CASE("store: profile fields and privacy settings end the same in either order and after a rebuild",
          "[store][privacy]") {
  // Two devices of alice change her profile and settings at once on two relays: per field
  // and per setting the newest envelope (by id) wins. A privacy body with an unknown value
  // changes nothing, not even its valid settings.
  const std::vector<std::tuple<Kind, const char*, uint64_t>> racing = {
      {Kind::kUserProfile, R"({"first_name":"Alice","status_message":"old"})", 3000},
      {Kind::kUserProfile, R"({"status_message":"new"})", 3001},
      {Kind::kPrivacy, R"({"last_seen":"contacts","read_receipts":false})", 3002},
      {Kind::kPrivacy, R"({"last_seen":"nobody","groups":"contacts"})", 3003},
      {Kind::kPrivacy, R"({"about":"nobody","groups":"friends"})", 3004},
  };
  const std::string want = "Alice|new|nobody|everyone|everyone|contacts|off";
  CHECK(UserAfterRace(racing, false, false) == want);
  CHECK(UserAfterRace(racing, true, false) == want);
  CHECK(UserAfterRace(racing, true, true) == want);
}

TEST_CASE("store: migrations are idempotent and reopen keeps data", "[store]") {
  TempDir dir;
  {
    auto store = store::Store::Open(dir.path, 1, true);
    REQUIRE(store.ok());
    REQUIRE((*store)->writer().SetMeta("relay_name", "eu1").ok());
  }
  auto again = store::Store::Open(dir.path, 1, false);
  REQUIRE(again.ok());
  auto name = (*again)->writer().Meta("relay_name");
  REQUIRE(name.ok());
  CHECK(name.value().value_or("") == "eu1");
  CHECK_FALSE(store::Store::Open(dir.path + "/missing", 1, false).ok());
}

TEST_CASE("store: schema 10 erases the text of messages deleted before it, schema 14 fixes profile fields", "[store]") {
  TempDir dir;
  uint64_t file_seq = 0;
  {
    auto store = store::Store::Open(dir.path, 1, true);
    REQUIRE(store.ok());
    auto& w = (*store)->writer();
    REQUIRE(w.Begin().ok());
    LogBuilder b(w);
    AliceAndHerGroup(b);
    // Two profile changes from two relays, the older applied last as schema 13 did it.
    b.Append(Kind::kUserProfile, 0, 1000, R"({"first_name":"Newest","status_message":"s"})", 4102);
    b.Append(Kind::kUserProfile, 0, 1000, R"({"first_name":"Older"})", 4101);
    // bob asks alice to be a contact and she accepts: schema 15 lets sync replay each to the other.
    b.Append(Kind::kUserCreate, 0, 1001, R"({"username":"bob"})", 1001);
    b.Append(Kind::kContactRequest, 0, 1001, R"({"user_id":"1000"})", 4200);
    b.Append(Kind::kContactAccept, 0, 1000, R"({"request_id":"4200"})", 4201);
    b.Append(Kind::kFileCreate, 2000, 1000,
             R"({"file_id":"5000","original_filename":"a.txt","mime_type":"text/plain","file_size":3,)"
             R"("sha256":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad","file_type":"file"})",
             5000);
    file_seq = b.last_.seq;
    b.Append(Kind::kMsgPost, 2000, 1000, R"({"message_type":"image","content":"old secret","reply_to_message_id":"9"})",
             3000);
    b.Append(Kind::kMsgEdit, 2000, 1000, R"({"message_id":"3000","content":"old secret, edited"})", 4000);
    b.Append(Kind::kReaction, 2000, 1000, R"({"message_id":"3000","reaction_type":"x","op":"add"})", 4001);
    b.Append(Kind::kMsgPost, 2000, 1000, R"({"message_type":"text","content":"kept"})", 3001);
    b.Append(Kind::kMsgEdit, 2000, 1000, R"({"message_id":"3001","content":"kept, edited"})", 4002);
    // The delete as schema 9 stored it: in the log, the view blanked, nothing erased (and
    // what later steps add undone, so that the store really is at schema 9).
    auto del = b.Make(Kind::kMsgDelete, 2000, 1000, R"({"message_id":"3000","for":"everyone"})", 4003);
    REQUIRE(w.Append(del, /*apply_views=*/false).ok());
    REQUIRE(w.db()
                .Exec("UPDATE users SET first_name='Older' WHERE user_id=1000; "
                      "UPDATE messages SET deleted=1, content='' WHERE message_id=3000; "
                      "DROP TABLE message_edits; DROP TABLE erased_posts; DROP TABLE device_keys; DROP TABLE prekeys; "
                      "ALTER TABLE messages DROP COLUMN encrypted; ALTER TABLE files DROP COLUMN seq; DROP TABLE "
                      "privacy; DROP TABLE profile_fields; DROP TABLE system_audience; DROP TABLE file_sent; "
                      "DROP TABLE last_seen; "
                      "PRAGMA user_version=9;")
                .ok());
    REQUIRE(w.Commit().ok());
  }
  auto store = store::Store::Open(dir.path, 1, false);
  REQUIRE(store.ok());
  auto& w = (*store)->writer();
  CHECK(BodyErased(w, 3000));
  CHECK(BodyErased(w, 4000));
  CHECK_FALSE(BodyErased(w, 3001));
  CHECK_FALSE(BodyErased(w, 4002));
  auto m = w.Message(3000);
  REQUIRE(m.ok());
  REQUIRE(m.value());
  CHECK((*m)->deleted);
  CHECK((*m)->message_type == "text");
  CHECK((*m)->reply_to == 0);
  CHECK((*m)->reactions.empty());
  CHECK((*w.Message(3001))->content == "kept, edited");
  auto file = w.File(5000);  // schema 12 filled in its file_create's seq
  REQUIRE(file.ok());
  REQUIRE(file.value());
  CHECK((*file)->seq == file_seq);
  auto alice = w.UserById(1000);  // schema 14: each profile field from its newest envelope
  REQUIRE((alice.ok() && alice.value()));
  CHECK(alice.value()->first_name == "Newest");
  CHECK(alice.value()->status_message == "s");
  auto ids_since = [&](uint64_t user) {
    std::vector<uint64_t> ids;
    auto rows = w.EnvelopesSince(user, 0, 1000);
    REQUIRE(rows.ok());
    for (const auto& r : *rows) {
      if (r.env.kind == Kind::kContactRequest || r.env.kind == Kind::kContactAccept) ids.push_back(r.env.id);
    }
    return ids;
  };
  CHECK(ids_since(1000) == std::vector<uint64_t>{4200, 4201});
  CHECK(ids_since(1001) == std::vector<uint64_t>{4200, 4201});
  CHECK(Rows(w, kEraseViews) == "e|3001|" + std::to_string(*w.MaxPos() - 1) + "|\n");
  const std::string migrated = Rows(w, kMessageRows), erase_views = Rows(w, kEraseViews);
  REQUIRE(w.Begin().ok());
  REQUIRE(w.RebuildViews().ok());
  REQUIRE(w.Commit().ok());
  CHECK(Rows(w, kMessageRows) == migrated);
  CHECK(Rows(w, kEraseViews) == erase_views);
  auto seen = w.LastSeen(10);  // schema 17: the local last_seen table, empty
  REQUIRE(seen.ok());
  CHECK(seen->empty());
}

TEST_CASE("store: last-seen times are local: kept across a reopen and a rebuild, newest first", "[store]") {
  TempDir dir;
  {
    auto store = store::Store::Open(dir.path, 1, true);
    REQUIRE(store.ok());
    auto& w = (*store)->writer();
    REQUIRE(w.Begin().ok());
    REQUIRE(w.PutLastSeen({{1000, 1795000001000}, {1001, 1795000003000}, {1002, 1795000002000}}).ok());
    REQUIRE(w.PutLastSeen({{1000, 1795000004000}}).ok());  // a later time replaces the stored one
    REQUIRE(w.Commit().ok());
  }
  auto store = store::Store::Open(dir.path, 1, false);
  REQUIRE(store.ok());
  auto& w = (*store)->writer();
  auto list = [&](int limit) {
    auto rows = w.LastSeen(limit);
    REQUIRE(rows.ok());
    std::string out;
    for (const auto& r : *rows) out += std::to_string(r.user_id) + "@" + std::to_string(r.at) + ",";
    return out;
  };
  const std::string all = "1000@1795000004000,1001@1795000003000,1002@1795000002000,";
  CHECK(list(10) == all);
  CHECK(list(2) == "1000@1795000004000,1001@1795000003000,");  // a bound keeps the newest
  // Not a view: a rebuild from the log leaves the table alone.
  CHECK(std::find_if(std::begin(store::kViewTables), std::end(store::kViewTables),
                     [](const char* t) { return std::string(t) == "last_seen"; }) == std::end(store::kViewTables));
  REQUIRE(w.Begin().ok());
  REQUIRE(w.RebuildViews().ok());
  REQUIRE(w.Commit().ok());
  CHECK(list(10) == all);
}

TEST_CASE("store: deps text round trip", "[store]") {
  std::vector<std::pair<std::string, uint64_t>> deps = {{"eu1", 5}, {"us-2", 1234567890123}};
  std::vector<std::pair<std::string, uint64_t>> back;
  REQUIRE(store::DepsFromText(store::DepsToText(deps), &back));
  CHECK(back == deps);
  CHECK(store::DepsFromText("", &back));
  CHECK(back.empty());
  CHECK_FALSE(store::DepsFromText("eu1", &back));
  CHECK_FALSE(store::DepsFromText("eu1=x", &back));
}

TEST_CASE("store: SearchMatch quotes every word, keeps prefixes, refuses what is not searchable", "[store][search]") {
  auto m = store::SearchMatch("  Lunch  caf\xc3\xa9*\tfo\"x ");
  REQUIRE(m.ok());
  CHECK(*m == "content:\"Lunch\" content:\"caf\xc3\xa9\"* content:\"fo\"\"x\"");
  // Symbols alone are dropped: FTS5 operators are just text.
  m = store::SearchMatch("a OR b -- NEAR( ) *");
  REQUIRE(m.ok());
  CHECK(*m == "content:\"a\" content:\"OR\" content:\"b\" content:\"NEAR(\"");
  CHECK(store::SearchMatch("").status().code() == Code::kBadRequest);
  CHECK(store::SearchMatch("?! ...").status().code() == Code::kBadRequest);
  CHECK(store::SearchMatch("bad \xff utf8").status().code() == Code::kBadRequest);
  CHECK(store::SearchMatch(std::string(257, 'a')).status().code() == Code::kBadRequest);
  CHECK(store::SearchMatch(std::string(256, 'a')).ok());
  CHECK(store::SearchMatch("1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16").ok());
  CHECK(store::SearchMatch("1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17").status().code() == Code::kBadRequest);
}

TEST_CASE("store: the search index follows posts, edits and deletes, a search pages past others' chats",
          "[store][search]") {
  TempDir dir;
  auto st = store::Store::Open(dir.path, 2, true);
  REQUIRE(st.ok());
  auto& w = (*st)->writer();
  LogBuilder b(w);
  uint64_t alice = 1000, carol = 1002;
  REQUIRE(w.Begin().ok());
  b.Append(Kind::kUserCreate, 0, alice, R"({"username":"alice"})", alice);
  b.Append(Kind::kUserCreate, 0, carol, R"({"username":"carol"})", carol);
  uint64_t mine = 2000, theirs = 2001;
  b.Append(Kind::kChatCreate, mine, alice, R"({"chat_type":"group","members":[{"user_id":"1000","role":"admin"}]})",
           mine);
  b.Append(Kind::kChatCreate, theirs, carol,
           R"({"chat_type":"group","members":[{"user_id":"1002","role":"admin"}]})", theirs);
  // alice is in more chats than a search names in its match (64), so her searches
  // filter candidates by chat one by one, under the scan budget.
  for (uint64_t extra = 0; extra < 64; ++extra) {
    b.Append(Kind::kChatCreate, 5000 + extra, alice,
             R"({"chat_type":"group","members":[{"user_id":"1000","role":"admin"}]})", 5000 + extra);
  }
  uint64_t bob = 1001;  // in `mine` only: his searches name it in the match
  b.Append(Kind::kUserCreate, 0, bob, R"({"username":"bob"})", bob);
  b.Append(Kind::kMemberAdd, mine, alice, R"({"user_ids":["1001"]})", 4999);
  std::vector<uint64_t> alices;  // oldest first
  for (int i = 0; i < 10; ++i) {
    alices.push_back(b.Append(Kind::kMsgPost, mine, alice,
                              R"({"message_type":"text","content":"common word )" + std::to_string(i) + R"("})",
                              3000 + i));
  }
  // More of carol's matches than one search looks at, all newer than alice's.
  for (int i = 0; i < 5100; ++i) {
    b.Append(Kind::kMsgPost, theirs, carol, R"({"message_type":"text","content":"common word"})", 10000 + i);
  }
  b.Append(Kind::kMsgEdit, mine, alice, R"({"message_id":"3000","content":"rare zebra"})", 20000);
  b.Append(Kind::kMsgDelete, mine, alice, R"({"message_id":"3001"})", 20001);
  REQUIRE(w.Commit().ok());
  auto max = w.MaxPos();
  REQUIRE(max.ok());

  store::SearchIndexer indexer(dir.path, [&] { return *max; });
  REQUIRE(indexer.CatchUp().ok());
  CHECK(indexer.indexed_pos() == *max);
  // The deleted one is not indexed (3000 may count twice: posted, then edited in a later round).
  CHECK(indexer.messages_indexed() >= 10 + 5100 - 1);
  CHECK(indexer.messages_indexed() <= 10 + 5100);

  auto lease = (*st)->readers().Acquire();
  REQUIRE(lease.ok());
  store::Queries& q = (*lease)->q();
  auto match = store::SearchMatch("common");
  REQUIRE(match.ok());
  std::vector<uint64_t> found;
  uint64_t before = 0;
  int pages = 0;
  while (pages < 10) {
    auto page = q.Search(alice, *match, 0, before, 4);
    ++pages;
    REQUIRE(page.ok());
    for (const auto& h : page->hits) {
      CHECK(h.chat_id == mine);
      CHECK(h.snippet.find("**common**") != std::string::npos);
      found.push_back(h.message_id);
    }
    if (!page->has_more) break;
    CHECK(page->next_before_id != 0);
    before = page->next_before_id;
  }
  // Newest first, without 3000 (edited away) and 3001 (deleted): 3009 … 3002.
  std::vector<uint64_t> want(alices.rbegin(), alices.rend() - 2);
  CHECK(found == want);
  CHECK(pages == 3);  // the first page stopped (empty) after looking at 5,000 of carol's
  // bob, in one chat, gets the same in one page: carol's matches are never looked at.
  auto bobs = q.Search(bob, *match, 0, 0, 100);
  REQUIRE(bobs.ok());
  std::vector<uint64_t> bob_found;
  for (const auto& h : bobs->hits) bob_found.push_back(h.message_id);
  CHECK(bob_found == want);
  CHECK_FALSE(bobs->has_more);
  // In one chat, the index intersects: carol's matches are never looked at.
  auto in_chat = q.Search(alice, *match, mine, 0, 100);
  REQUIRE(in_chat.ok());
  CHECK(in_chat->hits.size() == 8);
  CHECK_FALSE(in_chat->has_more);
  auto zebra = q.Search(alice, *store::SearchMatch("zeb*"), 0, 0, 10);
  REQUIRE(zebra.ok());
  REQUIRE(zebra->hits.size() == 1);
  CHECK(zebra->hits[0].message_id == 3000);
  CHECK(zebra->hits[0].content == "rare zebra");
  CHECK(zebra->hits[0].snippet == "rare **zebra**");
  // carol sees only hers.
  auto carols = q.Search(carol, *store::SearchMatch("zebra"), 0, 0, 10);
  REQUIRE(carols.ok());
  CHECK(carols->hits.empty());
}

TEST_CASE("store: a search index of another store, or ahead of the log, is rebuilt", "[store][search]") {
  // Two stores with different histories; B's log is longer than A's.
  TempDir a, b;
  auto sa = store::Store::Open(a.path, 1, true);
  auto sb = store::Store::Open(b.path, 1, true);
  REQUIRE(sa.ok());
  REQUIRE(sb.ok());
  auto fill = [](store::Writer& w, uint64_t base, int messages, const std::string& word) {
    LogBuilder lb(w);
    REQUIRE(w.Begin().ok());
    lb.Append(Kind::kUserCreate, 0, base, R"({"username":"u)" + std::to_string(base) + R"("})", base);
    lb.Append(Kind::kChatCreate, base + 1, base,
              R"({"chat_type":"group","members":[{"user_id":")" + std::to_string(base) + R"(","role":"admin"}]})",
              base + 1);
    for (int i = 0; i < messages; ++i) {
      lb.Append(Kind::kMsgPost, base + 1, base, R"({"message_type":"text","content":")" + word + R"("})",
                base + 100 + i);
    }
    REQUIRE(w.Commit().ok());
  };
  fill((*sa)->writer(), 1000, 3, "apple");
  fill((*sb)->writer(), 5000, 10, "banana");
  auto max_a = (*sa)->writer().MaxPos();
  auto max_b = (*sb)->writer().MaxPos();
  REQUIRE(max_a.ok());
  REQUIRE(max_b.ok());
  REQUIRE(*max_b > *max_a);
  {
    store::SearchIndexer ia(a.path, [&] { return *max_a; });
    REQUIRE(ia.CatchUp().ok());
    CHECK(ia.indexed_pos() == *max_a);
  }
  auto count = [](store::Store& st, uint64_t user, const char* word) {
    auto lease = st.readers().Acquire();
    REQUIRE(lease.ok());
    auto page = (*lease)->q().Search(user, *store::SearchMatch(word), 0, 0, 100);
    REQUIRE(page.ok());
    return page->hits.size();
  };
  // A's index next to B's store (no reader of B has opened its index yet): B's log is
  // longer, so only the store's identity tells them apart.
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(b.path + "/search.db" + suffix);
  std::filesystem::copy_file(a.path + "/search.db", b.path + "/search.db");
  {
    store::SearchIndexer ib(b.path, [&] { return *max_b; });
    REQUIRE(ib.CatchUp().ok());
    CHECK(ib.indexed_pos() == *max_b);
    CHECK(ib.messages_indexed() == 10);  // rebuilt from position 0
  }
  CHECK(count(**sb, 5000, "banana") == 10);
  CHECK(count(**sb, 5000, "apple") == 0);
}

TEST_CASE("store: the WAL starts over under sustained writes, never under a reader's feet", "[store]") {
  TempDir dir;
  auto opened = store::Store::Open(dir.path, 1, true);
  REQUIRE(opened.ok());
  store::Store& st = **opened;
  st.StartCheckpointer(1 << 20);  // 1 MiB
  auto& w = st.writer();
  LogBuilder b(w);
  const std::string body = R"({"pad":")" + std::string(1000, 'p') + "\"}";
  const std::string wal = dir.path + "/chatd.db-wal";
  int batches = 0;
  // One batch of 20 ~1 KB envelopes, then the writer's turn at the WAL (as the core does).
  auto batch = [&] {
    REQUIRE(w.Begin().ok());
    for (int i = 0; i < 20; ++i) b.Append(Kind::kPrivacy, 0, 1000, body);
    REQUIRE(w.Commit().ok());
    st.ResetWalIfDue(-1);
    ++batches;
  };
  auto wal_bytes = [&] { return std::filesystem::exists(wal) ? std::filesystem::file_size(wal) : 0; };
  auto write_until = [&](auto done, int64_t ms) {
    const int64_t until = MonoMs() + ms;
    while (!done() && MonoMs() < until) batch();
    return done();
  };

  // Sustained writes: it starts over again and again and stays near its bound, where it
  // would hold everything written if it never did.
  REQUIRE(write_until([&] { return st.wal_resets() >= 3; }, 30000));
  uintmax_t largest = wal_bytes();
  INFO("after " << batches << " batches: " << st.wal_resets() << " resets, WAL " << largest << " bytes");
  CHECK(largest < 16u << 20);

  // A reader holds it: it does not start over under the reader's snapshot, which stays
  // intact, and the writer goes on at full speed meanwhile. (A reader that began just
  // after everything was copied back reads the database file only: it lets one pending
  // start-over happen, then blocks every copy back, so at most one.)
  auto reader = store::Db::Open(dir.path + "/chatd.db", false, /*read_only=*/true);
  REQUIRE(reader.ok());
  REQUIRE((*reader)->Exec("BEGIN").ok());
  auto count = [&](store::Db& db) {
    auto q = db.Prepare("SELECT count(*) FROM envelopes");
    REQUIRE(q.ok());
    REQUIRE(q->Step().value());
    return q->U64(0);
  };
  const uint64_t seen = count(**reader);
  const uint64_t resets = st.wal_resets();
  const int64_t t0 = MonoMs();
  const int held_from = batches;
  write_until([&] { return batches - held_from >= 400; }, 30000);  // ~8 MB
  const int64_t held_ms = MonoMs() - t0;
  INFO("400 batches in " << held_ms << " ms with a reader holding the WAL; " << st.wal_frames() << " frames in it");
  CHECK(st.wal_resets() <= resets + 1);
  CHECK(st.wal_frames() > 4096);   // four times the bound
  CHECK(count(**reader) == seen);  // its snapshot is intact
  CHECK(held_ms < 400 * 50);       // no batch waited for the reader (the busy timeout is 5 s)
  const uint64_t held_resets = st.wal_resets();
  REQUIRE((*reader)->Exec("COMMIT").ok());

  // Once it leaves, the WAL starts over again; nothing written was lost.
  REQUIRE(write_until([&] { return st.wal_resets() > held_resets; }, 30000));
  CHECK(*w.CountEnvelopes() == static_cast<uint64_t>(batches) * 20);
  st.StopCheckpointer();
}
