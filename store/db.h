// store/db.h — RAII over SQLite connections and prepared statements.
//
// A Db is one sqlite3 connection and is NOT thread-safe: it belongs to one thread at a time
// (the core thread owns the writer; readers are checked out of a pool). Statements are
// prepared once per connection and cached by their SQL text; Stmt resets itself when the
// returned handle goes out of scope, so a cached statement is never left mid-step.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/status.h"

namespace chatd::store {

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};

// A bound, in-use statement. Move-only; resets and clears bindings on destruction.
class Stmt {
 public:
  explicit Stmt(sqlite3_stmt* s) : s_(s) {}
  Stmt(Stmt&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt();

  Stmt& Bind(int i, int64_t v);
  Stmt& Bind(int i, uint64_t v) { return Bind(i, static_cast<int64_t>(v)); }
  Stmt& Bind(int i, int v) { return Bind(i, static_cast<int64_t>(v)); }
  Stmt& Bind(int i, std::string_view text);
  Stmt& BindBlob(int i, const void* data, size_t n);
  Stmt& BindNull(int i);
  // Binds NULL for an empty string / zero id.
  Stmt& BindOpt(int i, std::string_view text) { return text.empty() ? BindNull(i) : Bind(i, text); }
  Stmt& BindOpt(int i, uint64_t id) { return id ? Bind(i, id) : BindNull(i); }

  // Steps once: true = a row is available, false = done. Errors carry SQLite's message.
  Result<bool> Step();
  // Steps to completion (for INSERT/UPDATE/DELETE).
  Status Run();
  // Ends the current execution so the statement can be bound and stepped again.
  void Reset() { sqlite3_reset(s_); }

  int64_t Int(int col) const { return sqlite3_column_int64(s_, col); }
  uint64_t U64(int col) const { return static_cast<uint64_t>(sqlite3_column_int64(s_, col)); }
  std::string Text(int col) const;
  std::string_view TextView(int col) const;  // valid until the next Step
  std::string Blob(int col) const;
  bool IsNull(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  int Columns() const { return sqlite3_column_count(s_); }

 private:
  sqlite3_stmt* s_;
};

class Db {
 public:
  static constexpr int kBusyTimeoutMs = 5000;  // how long a connection waits for a lock
  // Opens (creating if asked) with WAL, synchronous=FULL, foreign keys on, busy timeout.
  // `derived`: a file that can be rebuilt from the log (the search index): SQLite's own
  // VFS and synchronous=NORMAL (crash-consistent; a crash may lose the newest commits).
  // URI filenames ("file:…?mode=ro") are accepted here and by ATTACH.
  static Result<std::unique_ptr<Db>> Open(const std::string& path, bool create, bool read_only,
                                          bool derived = false);
  ~Db();

  // Runs SQL text (any number of statements), parsed anew on every call: for one-off SQL.
  Status Exec(std::string_view sql);
  // Runs ONE statement through the cache below: for what runs often (BEGIN, COMMIT,
  // SAVEPOINT), which Exec would parse each time.
  Status Run(std::string_view sql);
  // Returns a statement from this connection's cache (prepared on first use).
  Result<Stmt> Prepare(std::string_view sql);
  int64_t Changes() const { return sqlite3_changes64(db_.get()); }
  sqlite3* raw() const { return db_.get(); }
  std::string ErrMsg() const { return sqlite3_errmsg(db_.get()); }

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  std::unique_ptr<sqlite3, SqliteCloser> db_;
  // Looked up by the SQL text itself (no std::string built per call: a few statements run
  // per message on the core).
  struct SqlHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, std::unique_ptr<sqlite3_stmt, StmtFinalizer>, SqlHash, std::equal_to<>> cache_;
};

}  // namespace chatd::store
