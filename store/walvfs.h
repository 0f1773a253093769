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
//
// Deferred syncs (the core's writer only, DeferWalSyncs): xSync on the WAL still writes the
// buffer out, so SQLite publishes a commit only after its frames are in the file (page
// cache) as above, but it no longer waits for the disk. The caller makes commits durable
// itself with fdatasync() on the returned descriptor, off the committing thread, and must
// not acknowledge a commit before such an fdatasync that began after COMMIT returned. Other
// connections are unaffected: the checkpointer's own (real) WAL sync runs before it copies
// frames into the database, so a checkpoint never backfills frames the disk lacks, and the
// writer never checkpoints (wal_autocheckpoint=0). This is the WAL-mode synchronous=NORMAL
// contract (crash-consistent; a power loss may drop the newest commits) plus an explicit
// sync before every acknowledgement, i.e. synchronous=FULL's durability for all that is
// acknowledged, with the sync pipelined behind the next batch.
#pragma once

struct sqlite3;

namespace chatd::store {

// The VFS name to pass to sqlite3_open_v2. Registers it (once, thread-safe) on first call.
const char* CoalescingVfsName();

// Makes everything written so far durable (the WAL's directory entry too), then defers the
// WAL syncs of `db` (opened with this VFS, in WAL mode, its WAL open). Returns the
// descriptor to fdatasync, valid until the connection closes; -1 if this is not possible
// (syncs then stay SQLite's own).
int DeferWalSyncs(sqlite3* db);
// Undoes DeferWalSyncs, syncing what was written. An SQLite result code.
int ResumeWalSyncs(sqlite3* db);

}  // namespace chatd::store
