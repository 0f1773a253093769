#include "store/store.h"

#include <unistd.h>

#include <algorithm>

#include "base/log.h"
#include "base/time.h"

namespace chatd::store {

Result<std::unique_ptr<Store>> Store::Open(const std::string& data_dir, int read_connections, bool create) {
  std::string path = data_dir + "/" + kFileName;
  auto db = Db::Open(path, create, /*read_only=*/false);
  if (!db.ok()) return db.status();
  Status s = Migrate(**db);
  if (!s.ok()) return s;
  if (s = EnsureSearchIndex(data_dir); !s.ok()) return s;
  auto store = std::unique_ptr<Store>(new Store());
  store->path_ = path;
  store->writer_ = std::make_unique<Writer>(std::move(db.value()));
  store->readers_ = std::make_unique<ReaderPool>(path, read_connections, data_dir + "/" + kSearchFileName);
  return store;
}

void Store::StartCheckpointer(int64_t wal_max_bytes) {
  if (checkpointer_.joinable()) return;
  (void)writer_->db().Exec("PRAGMA wal_autocheckpoint=0;");
  int64_t page = 1024;
  if (auto ps = writer_->db().Prepare("PRAGMA page_size"); ps.ok()) {
    if (auto r = ps->Step(); r.ok() && r.value()) page = ps->Int(0);
  }
  reset_frames_ = std::max<int64_t>(kWalResetRest * 2, wal_max_bytes / (page + 24));  // + frame header
  sqlite3_wal_hook(writer_->db().raw(), &Store::OnWalCommit, this);
  checkpointer_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "chatd-ckpt");
    auto db = Db::Open(path_, false, false);
    if (!db.ok()) return;
    std::unique_lock<std::mutex> lock(ck_mu_);
    bool large = false;
    auto asked_at = std::chrono::steady_clock::now() - std::chrono::seconds(1);
    while (!ck_stop_) {
      // While the WAL is past its bound, a pass every 20 ms (each copies what the writer
      // appended since the last), so that little is left for the writer to copy.
      const bool asked = reset_due_.load(std::memory_order_relaxed);  // the writer copies the rest
      ck_cv_.wait_for(lock, std::chrono::milliseconds(large && !asked ? 20 : 200),
                      [&] { return ck_stop_ || ck_wake_.load(std::memory_order_relaxed); });
      ck_wake_.store(false, std::memory_order_relaxed);
      if (ck_stop_) break;
      lock.unlock();
      int log = 0, copied = 0;
      int rc = sqlite3_wal_checkpoint_v2((*db)->raw(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
      if (rc == SQLITE_OK && log >= 0) {
        large = log >= reset_frames_;
        // At most every 50 ms: an attempt the readers foil still costs the writer two syncs.
        const auto now = std::chrono::steady_clock::now();
        if (large && log - copied <= kWalResetRest && now - asked_at >= std::chrono::milliseconds(50)) {
          asked_at = now;
          reset_due_.store(true, std::memory_order_release);
        }
      }
      lock.lock();
    }
    lock.unlock();
    sqlite3_wal_checkpoint_v2((*db)->raw(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
  });
}

// The writer's connection, after each commit: `frames` are in the WAL now (fewer than
// before: this commit started it over).
int Store::OnWalCommit(void* store, sqlite3*, const char*, int frames) {
  auto* self = static_cast<Store*>(store);
  const auto before = static_cast<int64_t>(self->wal_frames_.load(std::memory_order_relaxed));
  self->wal_frames_.store(static_cast<uint64_t>(frames), std::memory_order_relaxed);
  if (frames < before) self->wal_resets_.fetch_add(1, std::memory_order_relaxed);
  if (frames >= self->reset_frames_ && before < self->reset_frames_) {
    std::lock_guard<std::mutex> lock(self->ck_mu_);  // once per crossing
    self->ck_wake_.store(true, std::memory_order_relaxed);
    self->ck_cv_.notify_one();
  }
  return SQLITE_OK;
}

void Store::ResetWalIfDue(int deferred_fd) {
  if (!reset_due_.load(std::memory_order_acquire)) return;
  // A checkpoint syncs the WAL before it copies frames into the database, but a deferred
  // sync (store/walvfs.h) does not wait for the disk: make the frames durable first.
  if (deferred_fd >= 0 && ::fdatasync(deferred_fd) != 0) return;  // chatd-sync will stop the relay
  // RESTART: copy the rest, then wait until no reader is still in the WAL, so that the
  // next commit starts it over; but wait at most kResetWaitUs for readers (chunked, short).
  sqlite3* db = writer_->db().raw();
  int64_t deadline = MonoNs() + kResetWaitUs * 1000;
  sqlite3_busy_handler(
      db,
      [](void* until, int) -> int {
        if (MonoNs() >= *static_cast<int64_t*>(until)) return 0;
        ::usleep(100);
        return 1;
      },
      &deadline);
  int log = 0, copied = 0;
  int rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_RESTART, &log, &copied);
  sqlite3_busy_timeout(db, Db::kBusyTimeoutMs);
  // -1: the checkpointer is in a pass; try again after the next batch. Otherwise, if a
  // reader kept the WAL from starting over, the checkpointer asks again later.
  if (!(rc == SQLITE_BUSY && log < 0)) reset_due_.store(false, std::memory_order_relaxed);
  if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
    log::Warn("store: checkpoint from the writer failed", {{"error", sqlite3_errstr(rc)}});
  }
}

void Store::StopCheckpointer() {
  if (!checkpointer_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(ck_mu_);
    ck_stop_ = true;
  }
  ck_cv_.notify_all();
  checkpointer_.join();
}

Result<std::unique_ptr<ReaderPool::Lease>> ReaderPool::Acquire() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !free_.empty() || opened_ < size_; });
  if (!free_.empty()) {
    auto db = std::move(free_.back());
    free_.pop_back();
    return std::make_unique<Lease>(this, std::move(db));
  }
  ++opened_;
  lock.unlock();
  auto db = OpenOne();
  if (!db.ok()) {
    std::lock_guard<std::mutex> relock(mu_);
    --opened_;
    cv_.notify_one();
    return db.status();
  }
  return std::make_unique<Lease>(this, std::move(db.value()));
}

Result<std::unique_ptr<Db>> ReaderPool::OpenOne() {
  auto db = Db::Open(path_, /*create=*/false, /*read_only=*/true);
  if (!db.ok() || search_path_.empty()) return db;
  auto attach = (*db)->Prepare("ATTACH DATABASE ? AS search");
  if (!attach.ok()) return attach.status();
  Status s = attach->Bind(1, ReadOnlyUri(search_path_)).Run();
  if (!s.ok()) return IoError("cannot attach the search index " + search_path_ + ": " + s.message());
  return db;
}

void ReaderPool::CloseIdle() {
  std::lock_guard<std::mutex> lock(mu_);
  opened_ -= static_cast<int>(free_.size());
  free_.clear();
  cv_.notify_all();
}

void ReaderPool::Return(std::unique_ptr<Db> db) {
  std::lock_guard<std::mutex> lock(mu_);
  free_.push_back(std::move(db));
  cv_.notify_one();
}

}  // namespace chatd::store
