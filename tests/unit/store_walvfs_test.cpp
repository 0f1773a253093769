// Unit tests: the WAL write-coalescing VFS (store/walvfs.h) loses nothing and
// hides nothing.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "store/db.h"
#include "store/walvfs.h"
#include "tests/support/temp_dir.h"

using namespace chatd;

namespace {

using chatd::test::TempDir;

int64_t Count(store::Db& db, int64_t* bytes) {
  auto st = db.Prepare("SELECT count(*), COALESCE(sum(length(v)), 0) FROM t");
  REQUIRE(st.ok());
  auto r = st->Step();
  REQUIRE(r.ok());
  REQUIRE(r.value());
  *bytes = st->Int(1);
  return st->Int(0);
}

// Inserts n rows of `size` bytes in one transaction through the writer.
void InsertRows(store::Db& w, int n, int size, int first) {
  REQUIRE(w.Exec("BEGIN IMMEDIATE").ok());
  for (int i = 0; i < n; ++i) {
    auto st = w.Prepare("INSERT INTO t(k, v) VALUES(?, ?)");
    REQUIRE(st.ok());
    st->Bind(1, static_cast<int64_t>(first + i)).Bind(2, std::string(static_cast<size_t>(size), 'a' + (i % 26)));
    REQUIRE(st->Run().ok());
  }
  REQUIRE(w.Exec("COMMIT").ok());
}

// A new store with table t: its writer and a read-only connection.
struct Opened {
  std::unique_ptr<store::Db> writer, reader;
};
Opened OpenNew(const std::string& path) {
  auto writer = store::Db::Open(path, /*create=*/true, /*read_only=*/false);
  REQUIRE(writer.ok());
  REQUIRE((*writer)->Exec("CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB NOT NULL)").ok());
  auto reader = store::Db::Open(path, false, /*read_only=*/true);
  REQUIRE(reader.ok());
  return {std::move(writer.value()), std::move(reader.value())};
}

// Reopens the closed store: every row is there and the file is sound.
void CheckReopened(const std::string& path, int64_t want_rows, int64_t want_bytes) {
  auto again = store::Db::Open(path, false, /*read_only=*/true);
  REQUIRE(again.ok());
  int64_t bytes = 0;
  CHECK(Count(**again, &bytes) == want_rows);
  CHECK(bytes == want_bytes);
  auto check = (*again)->Prepare("PRAGMA integrity_check");
  REQUIRE(check.ok());
  REQUIRE(check->Step().ok());
  CHECK(check->Text(0) == "ok");
}

}  // namespace

TEST_CASE(
    "walvfs: commits of every size are visible to readers at once and "
    "after reopening",
    "[store]") {
  TempDir dir;
  std::string path = dir.path + "/t.db";
  Opened db = OpenNew(path);
  auto& writer = db.writer;
  auto& reader = db.reader;

  // One small commit, one just around the unix VFS's 128 KiB write mask, one of
  // ~12 MiB (past the 8 MiB buffer limit, so the pager spills and re-reads
  // mid-transaction).
  struct Step {
    int rows, size;
  };
  int64_t want_rows = 0, want_bytes = 0;
  int next = 1;
  for (Step s : {Step{1, 10}, Step{128, 1000}, Step{131, 1000}, Step{3000, 4000}, Step{7, 300}}) {
    InsertRows(*writer, s.rows, s.size, next);
    next += s.rows;
    want_rows += s.rows;
    want_bytes += static_cast<int64_t>(s.rows) * s.size;
    int64_t bytes = 0;
    CHECK(Count(*reader, &bytes) == want_rows);  // another connection sees the commit
    CHECK(bytes == want_bytes);
  }
  // Rewrite pages of the same transaction many times (frames overwritten in the
  // buffer).
  REQUIRE(writer->Exec("BEGIN IMMEDIATE").ok());
  for (int i = 0; i < 50; ++i) REQUIRE(writer->Exec("UPDATE t SET v = v WHERE k % 7 = 0").ok());
  REQUIRE(writer->Exec("COMMIT").ok());

  // A checkpoint copies the pages back into the database file (coalesced too) and empties
  // the WAL: readers then find everything in the database file.
  REQUIRE(writer->Exec("PRAGMA wal_checkpoint(TRUNCATE)").ok());
  CHECK(std::filesystem::file_size(path + "-wal") == 0);
  {
    int64_t b = 0;
    CHECK(Count(*reader, &b) == want_rows);
    CHECK(b == want_bytes);
  }
  InsertRows(*writer, 5, 2000, next);  // and the WAL starts over from its header
  next += 5;
  want_rows += 5;
  want_bytes += 5 * 2000;

  // A rolled-back transaction leaves nothing behind.
  REQUIRE(writer->Exec("BEGIN IMMEDIATE").ok());
  REQUIRE(writer->Exec("DELETE FROM t").ok());
  REQUIRE(writer->Exec("ROLLBACK").ok());
  int64_t bytes = 0;
  CHECK(Count(*reader, &bytes) == want_rows);

  reader.reset();
  writer.reset();  // close without a checkpoint of ours: the WAL must replay on
                   // reopen
  CheckReopened(path, want_rows, want_bytes);
}

TEST_CASE("walvfs: deferred syncs publish commits at once and an fdatasync makes them durable", "[store]") {
  TempDir dir;
  std::string path = dir.path + "/t.db";
  Opened db = OpenNew(path);
  auto& writer = db.writer;
  auto& reader = db.reader;
  // Only a WAL opened through our VFS can defer: a read-only connection (default VFS) can't.
  CHECK(store::DeferWalSyncs(reader->raw()) == -1);

  int fd = store::DeferWalSyncs(writer->raw());
  REQUIRE(fd >= 0);
  int64_t want = 0, want_bytes = 0;
  int next = 1;
  for (int round = 0; round < 20; ++round) {
    int rows = 1 + round * 13;
    InsertRows(*writer, rows, 700, next);
    next += rows;
    want += rows;
    want_bytes += rows * 700;
    int64_t bytes = 0;
    CHECK(Count(*reader, &bytes) == want);  // visible before any sync
    CHECK(bytes == want_bytes);
    CHECK(::fdatasync(fd) == 0);  // what the core's chatd-sync thread does
  }
  // A checkpoint by another connection (the checkpointer) while syncs are deferred.
  {
    auto ckpt = store::Db::Open(path, false, /*read_only=*/false);
    REQUIRE(ckpt.ok());
    REQUIRE((*ckpt)->Exec("PRAGMA wal_checkpoint(PASSIVE)").ok());
  }
  InsertRows(*writer, 50, 900, next);
  want += 50;
  want_bytes += 50 * 900;
  REQUIRE(store::ResumeWalSyncs(writer->raw()) == SQLITE_OK);
  reader.reset();
  writer.reset();
  CheckReopened(path, want, want_bytes);
}
