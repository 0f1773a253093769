// The full-text index (store/search.h): its schema, the indexer thread, and the query.
#include "store/search.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <unordered_set>
#include <vector>

#include "base/json.h"
#include "base/log.h"
#include "base/utf8.h"
#include "crypto/envelope.h"
#include "store/store.h"

namespace chatd::store {
namespace {

// Envelopes per indexing transaction: large enough that FTS5 flushes few, big segments,
// small enough that a transaction stays in the tens of milliseconds.
constexpr int kRoundEnvelopes = 4000;
// ... and at most about this much message text, held in memory between reading and indexing.
constexpr size_t kRoundBytes = 4 << 20;
// Envelopes read per read transaction of the store.
constexpr int kReadChunk = 500;
// At most this many rounds a second while keeping up, so that a busy relay's index grows in
// batches; search sees a message within about this long after it is durable.
constexpr auto kRoundInterval = std::chrono::milliseconds(50);
// Candidates one search looks at before it returns a partial page (has_more, with a
// next_before_id to continue from): bounds the cost of a common word in other people's chats.
constexpr int kScanBudget = 5000;
// A searcher in at most this many chats has them named in the match (the index then
// yields only their rows); in more, candidates are filtered by chat one by one.
constexpr size_t kChatFilterMax = 64;

// Schema of search.db by PRAGMA user_version (append only).
const char* const kSearchMigrations[] = {
    R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO meta(key, value) VALUES('indexed_pos', 0);
CREATE VIRTUAL TABLE msg_fts USING fts5(content, chat,
  tokenize = 'unicode61 remove_diacritics 2', columnsize = 0);
)sql",
};

Status MigrateSearch(Db& db) {
  return ApplyMigrations(db, kSearchMigrations, static_cast<int>(std::size(kSearchMigrations)), "search index");
}

// True if the tokenizer will find something in `word`: an ASCII letter or digit, or any
// non-ASCII character (most are letters; a word of symbols alone is dropped).
bool Searchable(std::string_view word) {
  return std::any_of(word.begin(), word.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  });
}

std::string ChatToken(uint64_t chat_id) { return "c" + std::to_string(chat_id); }

}  // namespace

Status EnsureSearchIndex(const std::string& data_dir) {
  const std::string path = data_dir + "/" + kSearchFileName;
  auto open = [&]() -> Status {
    auto db = Db::Open(path, /*create=*/true, /*read_only=*/false, /*derived=*/true);
    if (!db.ok()) return db.status();
    return MigrateSearch(**db);
  };
  Status s = open();
  if (s.ok()) return s;
  // Derived data: an unreadable index (damaged, or from a newer chatd) is started afresh
  // and rebuilt from the log rather than keeping the relay down.
  log::Warn("search index unusable; deleting it to rebuild from the log", {{"path", path}, {"error", s.message()}});
  for (const char* suffix : {"", "-wal", "-shm"}) {
    if (unlink((path + suffix).c_str()) != 0 && errno != ENOENT) {
      return IoError("cannot delete " + path + suffix + ": " + strerror(errno));
    }
  }
  return open();
}

std::string ReadOnlyUri(const std::string& path) {
  std::string uri = "file:";
  for (char c : path) {
    if (c == '%' || c == '?' || c == '#') {
      static const char kHex[] = "0123456789abcdef";
      uri += '%';
      uri += kHex[static_cast<unsigned char>(c) >> 4];
      uri += kHex[static_cast<unsigned char>(c) & 15];
    } else {
      uri += c;
    }
  }
  return uri + "?mode=ro";
}

Result<std::string> SearchMatch(std::string_view typed) {
  if (typed.size() > kSearchMaxQueryBytes) {
    return BadRequest("parameter 'q' must be at most " + std::to_string(kSearchMaxQueryBytes) + " bytes");
  }
  if (!ValidUtf8(typed)) return BadRequest("parameter 'q' must be UTF-8");
  std::string match;
  int words = 0;
  size_t i = 0;
  while (i < typed.size()) {
    while (i < typed.size() && (typed[i] == ' ' || (typed[i] >= '\t' && typed[i] <= '\r'))) ++i;
    size_t start = i;
    while (i < typed.size() && typed[i] != ' ' && !(typed[i] >= '\t' && typed[i] <= '\r')) ++i;
    std::string_view word = typed.substr(start, i - start);
    bool prefix = false;
    while (!word.empty() && word.back() == '*') {
      prefix = true;
      word.remove_suffix(1);
    }
    if (!Searchable(word)) continue;
    if (++words > kSearchMaxWords) {
      return BadRequest("parameter 'q' may have at most " + std::to_string(kSearchMaxWords) + " words");
    }
    if (!match.empty()) match.push_back(' ');
    match += "content:\"";
    for (char c : word) {
      if (c == '"') match.push_back('"');  // FTS5 strings double their quotes
      match.push_back(c);
    }
    match.push_back('"');
    if (prefix) match.push_back('*');
  }
  if (words == 0) return BadRequest("parameter 'q' has no words to search for (letters or digits)");
  return match;
}

Result<SearchPage> Queries::Search(uint64_t user_id, std::string_view match, uint64_t chat_id, uint64_t before_id,
                                   int limit) {
  std::unordered_set<uint64_t> chats;
  std::string fts = std::string(match);
  if (chat_id) {
    fts += " chat:\"" + ChatToken(chat_id) + "\"";
    chats.insert(chat_id);  // the caller checked the membership
  } else {
    auto st = db_.Prepare("SELECT chat_id FROM members WHERE user_id=?");
    if (!st.ok()) return st.status();
    st->Bind(1, user_id);
    for (;;) {
      auto r = st->Step();
      if (!r.ok()) return r.status();
      if (!r.value()) break;
      chats.insert(st->U64(0));
    }
  }
  SearchPage page;
  if (chats.empty()) return page;
  if (!chat_id && chats.size() <= kChatFilterMax) {  // let the index skip other chats' rows
    std::string any;
    for (uint64_t c : chats) any += (any.empty() ? "chat:\"" : " OR chat:\"") + ChatToken(c) + "\"";
    fts += " AND (" + any + ")";
  }

  // Snippets come with the candidates: a separate MATCH per hit would cost ~50–100 µs each.
  auto cand = db_.Prepare(
      "SELECT rowid, snippet(msg_fts, 0, '**', '**', '…', 16) FROM search.msg_fts WHERE msg_fts MATCH ?1 "
      "AND rowid < ?2 ORDER BY rowid DESC");
  if (!cand.ok()) return cand.status();
  auto msg = db_.Prepare(
      "SELECT chat_id, sender_id, content, created_at FROM messages m WHERE message_id=?1 AND deleted=0 "
      "AND encrypted=0 AND NOT EXISTS (SELECT 1 FROM hidden h WHERE h.user_id=?2 AND h.message_id=?1)");
  if (!msg.ok()) return msg.status();
  cand->Bind(1, fts).Bind(2, before_id ? before_id : static_cast<uint64_t>(INT64_MAX));
  int scanned = 0;
  uint64_t last = 0;
  for (;;) {
    auto r = cand->Step();
    if (!r.ok()) {
      // FTS5 reports a malformed query as an SQL error; SearchMatch never builds one.
      return r.status();
    }
    if (!r.value()) break;
    if (static_cast<int>(page.hits.size()) > limit) break;
    if (scanned == kScanBudget) {  // a partial page: continue from the last id looked at
      page.has_more = true;
      page.next_before_id = last;
      break;
    }
    last = cand->U64(0);
    ++scanned;
    msg->Bind(1, last).Bind(2, user_id);
    auto m = msg->Step();
    if (!m.ok()) return m.status();
    if (m.value() && chats.count(msg->U64(0))) {
      SearchHit h;
      h.message_id = last;
      h.chat_id = msg->U64(0);
      h.sender_id = msg->U64(1);
      h.content = msg->Text(2);
      h.snippet = cand->Text(1);
      h.created_at = msg->Int(3);
      page.hits.push_back(std::move(h));
    }
    msg->Reset();
  }
  if (static_cast<int>(page.hits.size()) > limit) {
    page.hits.resize(limit);
    page.has_more = true;
    page.next_before_id = page.hits.back().message_id;
  }
  return page;
}

SearchIndexer::SearchIndexer(std::string data_dir, std::function<uint64_t()> durable)
    : data_dir_(std::move(data_dir)), durable_(std::move(durable)) {}

Status SearchIndexer::Open() {
  if (db_) return Status::Ok();
  auto db = Db::Open(data_dir_ + "/" + kSearchFileName, /*create=*/true, /*read_only=*/false, /*derived=*/true);
  if (!db.ok()) return db.status();
  Status s = MigrateSearch(**db);
  if (!s.ok()) return s;
  auto attach = (*db)->Prepare("ATTACH DATABASE ? AS store");
  if (!attach.ok()) return attach.status();
  s = attach->Bind(1, ReadOnlyUri(data_dir_ + "/" + Store::kFileName)).Run();
  if (!s.ok()) return s;
  db_ = std::move(db.value());
  auto pos = db_->Prepare("SELECT value FROM meta WHERE key='indexed_pos'");
  if (!pos.ok()) return pos.status();
  auto r = pos->Step();
  if (!r.ok()) return r.status();
  uint64_t indexed = r.value() ? pos->U64(0) : 0;
  pos->Reset();
  // The store it was built from is named by the id of its first envelope (unique, and kept
  // by a store as long as it lives); an index of another store, or one ahead of the log (a
  // restored store), is started afresh.
  auto head = db_->Prepare(
      "SELECT coalesce(max(pos), 0), coalesce((SELECT id FROM store.envelopes ORDER BY pos LIMIT 1), 0) "
      "FROM store.envelopes");
  if (!head.ok()) return head.status();
  if (auto m = head->Step(); !m.ok()) return m.status();
  const uint64_t log_pos = head->U64(0), first_id = head->U64(1);
  head->Reset();
  auto ident = db_->Prepare("SELECT value FROM meta WHERE key='store_first_id'");
  if (!ident.ok()) return ident.status();
  auto id_row = ident->Step();
  if (!id_row.ok()) return id_row.status();
  const bool known = id_row.value();
  const uint64_t indexed_first = known ? ident->U64(0) : 0;
  ident->Reset();
  const char* why = indexed > log_pos                                      ? "the index is ahead of the log"
                    : indexed > 0 && (!known || indexed_first != first_id) ? "the index is of another store"
                                                                           : nullptr;
  if (why) {
    log::Warn("search index rebuilt", {{"reason", why}, {"indexed_pos", indexed}, {"log_pos", log_pos}});
    indexed = 0;
  }
  if (why || !known || indexed_first != first_id) {
    s = db_->Exec("BEGIN IMMEDIATE");
    if (s.ok() && why) s = db_->Exec("DELETE FROM msg_fts; UPDATE meta SET value=0 WHERE key='indexed_pos';");
    if (s.ok()) {
      auto put = db_->Prepare("INSERT OR REPLACE INTO meta(key, value) VALUES('store_first_id', ?)");
      s = put.ok() ? put->Bind(1, first_id).Run() : put.status();
    }
    if (s.ok()) s = db_->Exec("COMMIT");
    if (!s.ok()) {
      (void)db_->Exec("ROLLBACK");
      return s;
    }
  }
  indexed_pos_.store(indexed, std::memory_order_relaxed);
  return Status::Ok();
}

Status SearchIndexer::Round(uint64_t up_to, bool* done) {
  const uint64_t from = indexed_pos_.load(std::memory_order_relaxed);
  *done = from >= up_to;
  if (*done) return Status::Ok();

  // 1. What to index, read in a transaction of its own: a reader's snapshot keeps the
  // store's checkpoints from copying back newer WAL frames, and the WAL can start over
  // only once all are copied (store.h), so this thread (low priority, often preempted on
  // a busy relay) holds one only while it reads, never while it writes the index.
  struct Text {
    uint64_t id = 0;
    bool fresh = false;  // first seen in its post envelope: not in the index yet
    bool present = false;
    uint64_t chat_id = 0;
    std::string content;
  };
  std::vector<Text> texts;  // in log order
  std::unordered_set<uint64_t> seen;
  uint64_t reached = from;
  size_t bytes = 0;
  int looked_at = 0;
  Status s;
  // Short read transactions, a chunk each, so that even when this thread is preempted for
  // long its snapshot is never far behind the log.
  for (bool chunk_full = true; chunk_full && looked_at < kRoundEnvelopes && bytes < kRoundBytes;) {
    if (s = db_->Run("BEGIN"); !s.ok()) return s;
    auto end_read = [&](Status st) {
      (void)db_->Run("COMMIT");  // nothing was written: this only ends the read
      return st;
    };
    auto env = db_->Prepare(
        "SELECT pos, kind, id, body FROM store.envelopes WHERE pos > ?1 AND pos <= ?2 AND kind IN (?3, ?4, ?5) "
        "ORDER BY pos LIMIT ?6");
    auto cur = db_->Prepare(
        "SELECT chat_id, content FROM store.messages WHERE message_id=? AND deleted=0 AND expires_at=0 "
        "AND encrypted=0");
    if (!env.ok() || !cur.ok()) return end_read(!env.ok() ? env.status() : cur.status());
    env->Bind(1, reached)
        .Bind(2, up_to)
        .Bind(3, static_cast<int>(crypto::Kind::kMsgPost))
        .Bind(4, static_cast<int>(crypto::Kind::kMsgEdit))
        .Bind(5, static_cast<int>(crypto::Kind::kMsgDelete))
        .Bind(6, kReadChunk);
    int rows = 0;
    bool cut = false;
    for (;;) {
      auto r = env->Step();
      if (!r.ok()) return end_read(r.status());
      if (!r.value()) break;
      ++rows;
      reached = env->U64(0);
      Text t;
      if (env->Int(1) == static_cast<int>(crypto::Kind::kMsgPost)) {
        t.id = env->U64(2);
        t.fresh = true;
      } else {
        std::string_view body = env->TextView(3);  // NULL (erased): nothing to index
        if (body.empty()) continue;
        json::Doc doc;
        if (!json::Parse(body, &doc).ok() || !doc.IsObject()) continue;
        auto it = doc.FindMember("message_id");
        if (it == doc.MemberEnd()) continue;
        auto id = json::IdFromValue(it->value);
        if (!id) continue;
        t.id = *id;
      }
      if (!seen.insert(t.id).second) continue;  // its current text is read once
      cur->Bind(1, t.id);
      auto m = cur->Step();
      if (!m.ok()) return end_read(m.status());
      if (m.value() && !cur->TextView(1).empty()) {
        t.present = true;
        t.chat_id = cur->U64(0);
        t.content = std::string(cur->TextView(1));
        bytes += t.content.size();
      }
      cur->Reset();
      texts.push_back(std::move(t));
      if (bytes >= kRoundBytes) {
        cut = true;  // the rest next round
        break;
      }
    }
    (void)end_read(Status::Ok());
    looked_at += rows;
    chunk_full = cut || rows == kReadChunk;
    if (!chunk_full) reached = up_to;  // every envelope up to up_to was looked at
  }

  // 2. The index, in one write transaction of search.db only. Not BEGIN IMMEDIATE: that
  // would open a transaction on every attached database, a read one on the store too. This
  // thread is search.db's only writer, so the deferred upgrade never waits.
  if (s = db_->Run("BEGIN"); !s.ok()) return s;
  auto fail = [&](Status st) {
    (void)db_->Run("ROLLBACK");
    return st;
  };
  auto del = db_->Prepare("DELETE FROM msg_fts WHERE rowid=?");
  auto ins = db_->Prepare("INSERT INTO msg_fts(rowid, content, chat) VALUES(?,?,?)");
  if (!del.ok() || !ins.ok()) return fail(!del.ok() ? del.status() : ins.status());
  uint64_t indexed = 0;
  for (const Text& t : texts) {
    // A message's post comes before its edits and deletes in the log (they depend on it),
    // so a message first seen in its post has never been indexed: nothing to remove.
    if (!t.fresh) {
      if (s = del->Bind(1, t.id).Run(); !s.ok()) return fail(s);
      del->Reset();
    }
    if (t.present) {
      s = ins->Bind(1, t.id).Bind(2, t.content).Bind(3, ChatToken(t.chat_id)).Run();
      if (!s.ok()) return fail(s);
      ins->Reset();
      ++indexed;
    }
  }
  auto mark = db_->Prepare("UPDATE meta SET value=? WHERE key='indexed_pos'");
  if (!mark.ok()) return fail(mark.status());
  if (s = mark->Bind(1, reached).Run(); !s.ok()) return fail(s);
  if (s = db_->Run("COMMIT"); !s.ok()) return fail(s);
  indexed_pos_.store(reached, std::memory_order_relaxed);
  messages_.fetch_add(indexed, std::memory_order_relaxed);
  *done = reached >= up_to;
  return Status::Ok();
}

Status SearchIndexer::CatchUp() {
  Status s = Open();
  if (!s.ok()) return s;
  const uint64_t up_to = durable_();
  for (bool done = false; !done;) {
    if (s = Round(up_to, &done); !s.ok()) return s;
  }
  return Status::Ok();
}

Status SearchIndexer::Start() {
  Status s = Open();
  if (!s.ok()) return s;
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void SearchIndexer::Notify() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (woken_) return;
    woken_ = true;
  }
  cv_.notify_one();
}

void SearchIndexer::Stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
  // Leave the WAL empty, then close: if the readers (which attach the index read-only and
  // cannot remove its WAL) are closed already (Relay::Drain), this last close removes
  // search.db-wal and -shm; if not, an empty WAL is left.
  if (db_) (void)db_->Exec("PRAGMA wal_checkpoint(TRUNCATE)");
  db_.reset();
}

void SearchIndexer::Run() {
  pthread_setname_np(pthread_self(), "chatd-index");
  // Below the core and the gateway: under overload, search lags instead of messages.
  const auto tid = static_cast<id_t>(syscall(SYS_gettid));
  errno = 0;
  const int nice_now = getpriority(PRIO_PROCESS, tid);
  if (errno == 0) (void)setpriority(PRIO_PROCESS, tid, std::min(nice_now + 10, 19));
  auto next_round = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    // A round at most every kRoundInterval, and when there is something new (or once a
    // second, for positions published without a Notify).
    cv_.wait_until(lock, next_round, [&] { return stop_; });
    if (stop_) break;
    cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stop_ || woken_; });
    if (stop_) break;
    woken_ = false;
    lock.unlock();
    next_round = std::chrono::steady_clock::now() + kRoundInterval;
    const uint64_t up_to = durable_();
    bool done = false;
    Status s = Round(up_to, &done);
    if (!s.ok()) {
      failures_.fetch_add(1, std::memory_order_relaxed);
      log::Error("search indexing failed; retrying in 1 s", {{"error", s.message()}});
      next_round += std::chrono::seconds(1);
    }
    lock.lock();
    if (s.ok() && !done) woken_ = true;  // more to do: the next round follows at once
    if (s.ok() && !done) next_round = std::chrono::steady_clock::now();
  }
}

}  // namespace chatd::store
