// store/search.h — full-text search over message text.
//
// The index is its own SQLite file, DIR/search.db: an FTS5 table keyed by message_id over
// the current text of every message (and a "c<chat_id>" token, so a search in one chat is
// an index intersection), plus the log position it has been brought up to. It is derived
// from the envelope log and may be deleted at any time: chatd rebuilds it.
//
// One thread, chatd-index (SearchIndexer), keeps it: it follows the log from its position
// up to the relay's durable position and, for each message post, edit or delete, re-reads
// that message's current row and replaces its index entry, in transactions of up to a few
// thousand envelopes. It never touches chatd.db's write lock (a separate file), so the core
// never waits for it, and it runs at a lower CPU priority: under overload search lags
// (chatd_search_lag in /metrics) rather than messages. Separate from the core's group
// commit because FTS5 costs ~6–15 µs per message, as much as the rest of a durable write.
//
// Readers (the REST pool) see the index through `ATTACH … AS search` on their connections
// (ReaderPool) and query it with Queries::Search: the index yields candidate ids, newest
// first, and each is checked against chatd.db's messages (still there, not deleted, in a
// chat the reader belongs to) before it is returned.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "base/status.h"
#include "store/db.h"

namespace chatd::store {

inline constexpr const char* kSearchFileName = "search.db";
inline constexpr size_t kSearchMaxQueryBytes = 256;
inline constexpr int kSearchMaxWords = 16;

// Creates DIR/search.db if missing and brings its schema up to date; one that cannot be
// opened or migrated (damaged, or made by a newer chatd) is deleted and made afresh (the
// indexer then rebuilds it). Called by Store::Open before any reader attaches it.
Status EnsureSearchIndex(const std::string& data_dir);

// "file:PATH?mode=ro" with PATH escaped as an SQLite URI (for ATTACH).
std::string ReadOnlyUri(const std::string& path);

// What a user typed → an FTS5 query: every whitespace-separated word must occur in the
// text (each word a quoted phrase, so nothing is FTS5 syntax; a trailing '*' makes it a
// prefix). bad_request if it is too long, not UTF-8, or has no letters or digits.
Result<std::string> SearchMatch(std::string_view typed);

struct SearchHit {
  uint64_t message_id = 0;
  uint64_t chat_id = 0;
  uint64_t sender_id = 0;
  std::string content;
  std::string snippet;  // ~16 words around the match, matches wrapped in ** **
  int64_t created_at = 0;
};

struct SearchPage {
  std::vector<SearchHit> hits;
  bool has_more = false;
  uint64_t next_before_id = 0;  // pass as before_id for the next page (0 if !has_more)
};

// Keeps DIR/search.db up to date with the log (see the top of this file).
class SearchIndexer {
 public:
  // `durable` returns the relay's durable log position (thread-safe).
  SearchIndexer(std::string data_dir, std::function<uint64_t()> durable);
  ~SearchIndexer() { Stop(); }
  SearchIndexer(const SearchIndexer&) = delete;
  SearchIndexer& operator=(const SearchIndexer&) = delete;

  // Opens the index and starts chatd-index. An index ahead of the log (a restored store)
  // or of another store (by the id of its first envelope) is emptied and rebuilt.
  Status Start();
  // New durable positions: wake the thread. Cheap and thread-safe (called per commit).
  void Notify();
  // Finishes the transaction in progress, joins the thread and empties the WAL. Idempotent.
  void Stop();

  // Runs indexing rounds on the calling thread until the index reaches `durable()` (tests
  // and offline tools; not while the thread runs).
  Status CatchUp();

  uint64_t indexed_pos() const { return indexed_pos_.load(std::memory_order_relaxed); }
  // Durable log positions not yet indexed (0 when caught up).
  uint64_t lag() const {
    const uint64_t durable = durable_(), indexed = indexed_pos();
    return durable > indexed ? durable - indexed : 0;
  }
  uint64_t messages_indexed() const { return messages_.load(std::memory_order_relaxed); }
  uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }

 private:
  Status Open();
  // One transaction: envelopes after indexed_pos up to `up_to`, at most kRoundEnvelopes.
  // Sets *done when it reached up_to.
  Status Round(uint64_t up_to, bool* done);
  void Run();

  const std::string data_dir_;
  const std::function<uint64_t()> durable_;
  std::unique_ptr<Db> db_;  // search.db, with chatd.db attached read-only as "store"
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;  // guarded by mu_
  bool stop_ = false;   // guarded by mu_
  std::atomic<uint64_t> indexed_pos_{0};
  std::atomic<uint64_t> messages_{0};
  std::atomic<uint64_t> failures_{0};
};

}  // namespace chatd::store
