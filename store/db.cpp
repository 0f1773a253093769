#include "store/db.h"

#include <mutex>

#include "store/walvfs.h"

namespace chatd::store {

Stmt::~Stmt() {
  if (s_) {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
}

Stmt& Stmt::Bind(int i, int64_t v) {
  sqlite3_bind_int64(s_, i, v);
  return *this;
}

Stmt& Stmt::Bind(int i, std::string_view text) {
  // A default string_view has a null data(), which SQLite would bind as NULL.
  sqlite3_bind_text(s_, i, text.data() ? text.data() : "", static_cast<int>(text.size()), SQLITE_TRANSIENT);
  return *this;
}

Stmt& Stmt::BindBlob(int i, const void* data, size_t n) {
  sqlite3_bind_blob(s_, i, n ? data : "", static_cast<int>(n), SQLITE_TRANSIENT);
  return *this;
}

Stmt& Stmt::BindNull(int i) {
  sqlite3_bind_null(s_, i);
  return *this;
}

Result<bool> Stmt::Step() {
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  sqlite3* db = sqlite3_db_handle(s_);
  Code code = (rc == SQLITE_CONSTRAINT || (rc & 0xff) == SQLITE_CONSTRAINT) ? Code::kConflict : Code::kIo;
  return Status(code, std::string("sqlite: ") + sqlite3_errmsg(db));
}

Status Stmt::Run() {
  for (;;) {
    auto r = Step();
    if (!r.ok()) return r.status();
    if (!r.value()) return Status::Ok();
  }
}

std::string Stmt::Text(int col) const { return std::string(TextView(col)); }

std::string_view Stmt::TextView(int col) const {
  const unsigned char* p = sqlite3_column_text(s_, col);
  if (!p) return {};
  return {reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(s_, col))};
}

std::string Stmt::Blob(int col) const {
  const void* p = sqlite3_column_blob(s_, col);
  if (!p) return {};
  return std::string(static_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(s_, col)));
}

namespace {

// SQLite's process-wide settings, made before its first use (sqlite3_config refuses them
// afterwards, harmlessly).
void ConfigureSqliteOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    // No memory statistics: with them every allocation SQLite makes takes a process-wide
    // mutex to count it (~4% of the instructions outside Ed25519 per message sent), and
    // chatd never reads them.
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  });
}

}  // namespace

Result<std::unique_ptr<Db>> Db::Open(const std::string& path, bool create, bool read_only, bool derived) {
  ConfigureSqliteOnce();
  sqlite3* raw = nullptr;
  int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI | (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE);
  if (create && !read_only) flags |= SQLITE_OPEN_CREATE;
  // Writers coalesce their WAL writes (store/walvfs.h; needs the synchronous=FULL below).
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, read_only || derived ? nullptr : CoalescingVfsName());
  std::unique_ptr<Db> db(new Db(raw));
  if (rc != SQLITE_OK) {
    return IoError("cannot open store " + path + ": " + (raw ? sqlite3_errmsg(raw) : "out of memory"));
  }
  sqlite3_busy_timeout(raw, kBusyTimeoutMs);
  sqlite3_extended_result_codes(raw, 1);
  if (derived) {
    Status s = db->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
    if (!s.ok()) return s;
  } else if (!read_only) {
    // Small pages: a commit writes every page it dirtied to the WAL, and a message dirties a
    // few scattered index pages (its chat, its sender); 1 KiB pages write 4x less than 4 KiB.
    // Only takes effect when the file is created.
    if (create) (void)db->Exec("PRAGMA page_size=1024;");
    Status s = db->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
    if (!s.ok()) return s;
  } else {
    Status s = db->Exec("PRAGMA query_only=ON;");
    if (!s.ok()) return s;
  }
  return db;
}

Db::~Db() { cache_.clear(); }

Status Db::Exec(std::string_view sql) {
  std::string copy(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_.get(), copy.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db_.get());
    sqlite3_free(err);
    return IoError("sqlite: " + msg);
  }
  return Status::Ok();
}

Status Db::Run(std::string_view sql) {
  auto st = Prepare(sql);
  if (!st.ok()) return st.status();
  return st->Run();
}

Result<Stmt> Db::Prepare(std::string_view sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) return Stmt(it->second.get());
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &s, nullptr);
  if (rc != SQLITE_OK) return IoError(std::string("sqlite prepare: ") + sqlite3_errmsg(db_.get()));
  auto [ins, _] = cache_.emplace(std::string(sql), std::unique_ptr<sqlite3_stmt, StmtFinalizer>(s));
  return Stmt(ins->second.get());
}

}  // namespace chatd::store
