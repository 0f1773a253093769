#include "store/walvfs.h"

#include <sqlite3.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <new>
#include <string>

namespace chatd::store {
namespace {

constexpr size_t kMaxBuffered = 8u << 20;

sqlite3_vfs* g_real = nullptr;  // the default VFS we wrap
sqlite3_vfs g_vfs;

// Our file: the wrapper SQLite sees, followed in the same allocation by the
// real file.
struct File {
  sqlite3_file base;
  sqlite3_file* real;
  bool wal;
  std::string* buf;  // pending bytes for [buf_off, buf_off + buf->size()); WAL files only
  sqlite3_int64 buf_off;
  int sync_fd;       // WAL files: our own descriptor of the same file, for DeferWalSyncs
  bool defer_sync;   // WAL files: xSync writes out the buffer but leaves the fdatasync to the owner
};

File* F(sqlite3_file* f) { return reinterpret_cast<File*>(f); }
sqlite3_file* R(sqlite3_file* f) { return F(f)->real; }

// The unix VFS masks each pwrite's length with 0x1ffff (a write of exactly 128
// KiB would be taken for "disk full"), so the buffer goes down in chunks below
// that.
constexpr size_t kChunk = 0x1f000;

int Flush(File* f) {
  if (!f->buf || f->buf->empty()) return SQLITE_OK;
  int rc = SQLITE_OK;
  for (size_t done = 0; done < f->buf->size() && rc == SQLITE_OK; done += kChunk) {
    size_t n = std::min(kChunk, f->buf->size() - done);
    rc = f->real->pMethods->xWrite(f->real, f->buf->data() + done, static_cast<int>(n),
                                   f->buf_off + static_cast<sqlite3_int64>(done));
  }
  f->buf->clear();
  return rc;
}

int Close(sqlite3_file* pf) {
  File* f = F(pf);
  int flush_rc = Flush(f);
  int rc = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
  if (f->sync_fd >= 0) ::close(f->sync_fd);
  f->sync_fd = -1;
  delete f->buf;
  f->buf = nullptr;
  return flush_rc != SQLITE_OK ? flush_rc : rc;
}

int Read(sqlite3_file* pf, void* out, int n, sqlite3_int64 off) {
  int rc = Flush(F(pf));
  if (rc != SQLITE_OK) return rc;
  return R(pf)->pMethods->xRead(R(pf), out, n, off);
}

int Write(sqlite3_file* pf, const void* data, int n, sqlite3_int64 off) {
  File* f = F(pf);
  if (!f->wal) return f->real->pMethods->xWrite(f->real, data, n, off);
  std::string& buf = *f->buf;
  const char* p = static_cast<const char*>(data);
  sqlite3_int64 end = f->buf_off + static_cast<sqlite3_int64>(buf.size());
  if (!buf.empty() && off >= f->buf_off && off + n <= end) {
    // Rewrites a frame of this transaction that is still buffered.
    std::memcpy(buf.data() + (off - f->buf_off), p, static_cast<size_t>(n));
    return SQLITE_OK;
  }
  if (!buf.empty() && off != end) {
    int rc = Flush(f);
    if (rc != SQLITE_OK) return rc;
  }
  if (buf.empty()) f->buf_off = off;
  buf.append(p, static_cast<size_t>(n));
  return buf.size() >= kMaxBuffered ? Flush(f) : SQLITE_OK;
}

int Truncate(sqlite3_file* pf, sqlite3_int64 size) {
  int rc = Flush(F(pf));
  if (rc != SQLITE_OK) return rc;
  return R(pf)->pMethods->xTruncate(R(pf), size);
}

int Sync(sqlite3_file* pf, int flags) {
  int rc = Flush(F(pf));
  if (rc != SQLITE_OK) return rc;
  if (F(pf)->defer_sync) return SQLITE_OK;  // the owner fdatasyncs sync_fd (DeferWalSyncs)
  return R(pf)->pMethods->xSync(R(pf), flags);
}

int FileSize(sqlite3_file* pf, sqlite3_int64* size) {
  int rc = Flush(F(pf));
  if (rc != SQLITE_OK) return rc;
  return R(pf)->pMethods->xFileSize(R(pf), size);
}

int Lock(sqlite3_file* pf, int level) { return R(pf)->pMethods->xLock(R(pf), level); }
int Unlock(sqlite3_file* pf, int level) {
  int rc = Flush(F(pf));
  int urc = R(pf)->pMethods->xUnlock(R(pf), level);
  return rc != SQLITE_OK ? rc : urc;
}
int CheckReservedLock(sqlite3_file* pf, int* out) { return R(pf)->pMethods->xCheckReservedLock(R(pf), out); }
int FileControl(sqlite3_file* pf, int op, void* arg) {
  if (op == SQLITE_FCNTL_SYNC || op == SQLITE_FCNTL_COMMIT_PHASETWO) {
    int rc = Flush(F(pf));
    if (rc != SQLITE_OK) return rc;
  }
  return R(pf)->pMethods->xFileControl(R(pf), op, arg);
}
int SectorSize(sqlite3_file* pf) { return R(pf)->pMethods->xSectorSize(R(pf)); }
int DeviceCharacteristics(sqlite3_file* pf) { return R(pf)->pMethods->xDeviceCharacteristics(R(pf)); }
int ShmMap(sqlite3_file* pf, int region, int size, int extend, void volatile** out) {
  return R(pf)->pMethods->xShmMap(R(pf), region, size, extend, out);
}
int ShmLock(sqlite3_file* pf, int offset, int n, int flags) {
  return R(pf)->pMethods->xShmLock(R(pf), offset, n, flags);
}
void ShmBarrier(sqlite3_file* pf) { R(pf)->pMethods->xShmBarrier(R(pf)); }
int ShmUnmap(sqlite3_file* pf, int del) { return R(pf)->pMethods->xShmUnmap(R(pf), del); }
int Fetch(sqlite3_file* pf, sqlite3_int64 off, int n, void** out) {
  int rc = Flush(F(pf));
  if (rc != SQLITE_OK) return rc;
  return R(pf)->pMethods->xFetch(R(pf), off, n, out);
}
int Unfetch(sqlite3_file* pf, sqlite3_int64 off, void* p) { return R(pf)->pMethods->xUnfetch(R(pf), off, p); }

const sqlite3_io_methods kMethods = {
    3,
    Close,
    Read,
    Write,
    Truncate,
    Sync,
    FileSize,
    Lock,
    Unlock,
    CheckReservedLock,
    FileControl,
    SectorSize,
    DeviceCharacteristics,
    ShmMap,
    ShmLock,
    ShmBarrier,
    ShmUnmap,
    Fetch,
    Unfetch,
};

int Open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* pf, int flags, int* out_flags) {
  File* f = F(pf);
  f->base.pMethods = nullptr;
  f->real = reinterpret_cast<sqlite3_file*>(f + 1);
  f->wal = (flags & SQLITE_OPEN_WAL) != 0;
  f->buf = nullptr;
  f->buf_off = 0;
  f->sync_fd = -1;
  f->defer_sync = false;
  int rc = g_real->xOpen(g_real, name, f->real, flags, out_flags);
  if (rc != SQLITE_OK) return rc;
  if (f->real->pMethods->iVersion < 3) {  // we forward xShm* and xFetch: need a v3 file
    f->real->pMethods->xClose(f->real);
    return SQLITE_CANTOPEN;
  }
  if (f->wal) f->buf = new (std::nothrow) std::string();
  if (f->wal && !f->buf) {
    f->real->pMethods->xClose(f->real);
    return SQLITE_NOMEM;
  }
  // The same file (opened right after SQLite's own descriptor, so the same inode): a
  // deferred sync is an fdatasync on it from another thread, never touching SQLite's
  // file object. Without it, DeferWalSyncs is refused and syncs stay SQLite's.
  if (f->wal && name) f->sync_fd = ::open(name, O_RDONLY | O_CLOEXEC);
  f->base.pMethods = &kMethods;
  return SQLITE_OK;
}

// Everything but xOpen goes to the real VFS with the real VFS as its first
// argument.
int Delete(sqlite3_vfs*, const char* name, int sync_dir) { return g_real->xDelete(g_real, name, sync_dir); }
int Access(sqlite3_vfs*, const char* name, int flags, int* out) { return g_real->xAccess(g_real, name, flags, out); }
int FullPathname(sqlite3_vfs*, const char* name, int n, char* out) {
  return g_real->xFullPathname(g_real, name, n, out);
}
void* DlOpen(sqlite3_vfs*, const char* name) { return g_real->xDlOpen(g_real, name); }
void DlError(sqlite3_vfs*, int n, char* out) { g_real->xDlError(g_real, n, out); }
void (*DlSym(sqlite3_vfs*, void* h, const char* sym))(void) { return g_real->xDlSym(g_real, h, sym); }
void DlClose(sqlite3_vfs*, void* h) { g_real->xDlClose(g_real, h); }
int Randomness(sqlite3_vfs*, int n, char* out) { return g_real->xRandomness(g_real, n, out); }
int Sleep(sqlite3_vfs*, int us) { return g_real->xSleep(g_real, us); }
int CurrentTime(sqlite3_vfs*, double* out) { return g_real->xCurrentTime(g_real, out); }
int GetLastError(sqlite3_vfs*, int n, char* out) { return g_real->xGetLastError(g_real, n, out); }
int CurrentTimeInt64(sqlite3_vfs*, sqlite3_int64* out) { return g_real->xCurrentTimeInt64(g_real, out); }

// The WAL file of `db` if it is one of ours (and open), else nullptr.
File* OurWal(sqlite3* db) {
  sqlite3_file* pf = nullptr;
  if (sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &pf) != SQLITE_OK || !pf ||
      pf->pMethods != &kMethods || !F(pf)->wal) {
    return nullptr;
  }
  return F(pf);
}

// Makes everything written so far durable, the directory entry included (the unix VFS
// syncs the directory on a newly created WAL's first sync), then sets who syncs next.
int SetDeferred(File* f, bool deferred) {
  int rc = Flush(f);
  if (rc == SQLITE_OK) rc = f->real->pMethods->xSync(f->real, SQLITE_SYNC_FULL);
  if (rc == SQLITE_OK) f->defer_sync = deferred;
  return rc;
}

}  // namespace

int DeferWalSyncs(sqlite3* db) {
  File* f = OurWal(db);
  if (!f || f->sync_fd < 0 || SetDeferred(f, true) != SQLITE_OK) return -1;
  return f->sync_fd;
}

int ResumeWalSyncs(sqlite3* db) {
  File* f = OurWal(db);
  return f ? SetDeferred(f, false) : SQLITE_OK;
}

const char* CoalescingVfsName() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_real = sqlite3_vfs_find(nullptr);
    std::memset(&g_vfs, 0, sizeof g_vfs);
    g_vfs.iVersion = 2;
    g_vfs.szOsFile = static_cast<int>(sizeof(File)) + g_real->szOsFile;
    g_vfs.mxPathname = g_real->mxPathname;
    g_vfs.zName = "chatd-walbuf";
    g_vfs.xOpen = Open;
    g_vfs.xDelete = Delete;
    g_vfs.xAccess = Access;
    g_vfs.xFullPathname = FullPathname;
    g_vfs.xDlOpen = DlOpen;
    g_vfs.xDlError = DlError;
    g_vfs.xDlSym = DlSym;
    g_vfs.xDlClose = DlClose;
    g_vfs.xRandomness = Randomness;
    g_vfs.xSleep = Sleep;
    g_vfs.xCurrentTime = CurrentTime;
    g_vfs.xGetLastError = GetLastError;
    g_vfs.xCurrentTimeInt64 = CurrentTimeInt64;
    sqlite3_vfs_register(&g_vfs, /*makeDflt=*/0);
  });
  return g_vfs.zName;
}

}  // namespace chatd::store
