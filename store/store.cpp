#include "store/store.h"

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

void Store::StartCheckpointer() {
  if (checkpointer_.joinable()) return;
  (void)writer_->db().Exec("PRAGMA wal_autocheckpoint=0;");
  checkpointer_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "chatd-ckpt");
    auto db = Db::Open(path_, false, false);
    if (!db.ok()) return;
    std::unique_lock<std::mutex> lock(ck_mu_);
    while (!ck_stop_) {
      ck_cv_.wait_for(lock, std::chrono::milliseconds(200));
      lock.unlock();
      sqlite3_wal_checkpoint_v2((*db)->raw(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
      lock.lock();
    }
    lock.unlock();
    sqlite3_wal_checkpoint_v2((*db)->raw(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
  });
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

void ReaderPool::Return(std::unique_ptr<Db> db) {
  std::lock_guard<std::mutex> lock(mu_);
  free_.push_back(std::move(db));
  cv_.notify_one();
}

}  // namespace chatd::store
