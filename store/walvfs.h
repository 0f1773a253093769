// store/walvfs.h — a SQLite VFS that coalesces the writes to a WAL file.
//
// SQLite appends each WAL frame with two pwrite() calls (a 24-byte frame header, then the
// page), so a group commit of a hundred messages that dirtied a few hundred 1 KiB pages
// makes several hundred system calls before its one fdatasync. This VFS wraps the default
// one and, for WAL files only, gathers writes that continue one another in memory and
// hands them to the real file in as few writes as possible (chunks just under 128 KiB):
// before a sync, a read, a size query or truncation, an unlock, when a write does not
// continue the buffer, when the buffer passes 8 MiB, and at close.
//
// Only for connections with synchronous=FULL (Db::Open sets it): SQLite then syncs the WAL
// (flushing our buffer) at every commit BEFORE it publishes the new frames in the
// wal-index, so no other connection or process ever looks on disk for frames still in our
// memory (frames spilled mid-transaction are invisible to others until their commit, and
// the writer's own reads flush first). Durability is unchanged: a commit is durable when
// xSync on the WAL returns, and a failed deferred write fails that xSync, so the commit
// fails.
//
// The database file is NOT buffered (nor are journals and temp files): a checkpoint that
// copies back only part of the WAL marks those frames as backfilled without syncing the
// database file, and new readers then read those pages from the file, so a checkpoint's
// writes must reach the file at once. (Measured: buffering them corrupted reads.)
#pragma once

namespace chatd::store {

// The VFS name to pass to sqlite3_open_v2. Registers it (once, thread-safe) on first call.
const char* CoalescingVfsName();

}  // namespace chatd::store
