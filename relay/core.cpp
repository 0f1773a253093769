#include "relay/core.h"

#include <event2/thread.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "base/log.h"
#include "base/time.h"
#include "relay/events.h"

namespace chatd {
Core::Core(const conf::Config& cfg, store::Store& store, const crypto::KeyPair& key)
    : cfg_(cfg), store_(store), key_(key), hlc_(static_cast<uint32_t>(cfg.node_id)) {}

Core::~Core() { Stop(); }

Status Core::LoadState() {
  auto& w = store_.writer();
  auto vec = w.Vector();
  if (!vec.ok()) return vec.status();
  vector_ = std::move(vec.value());
  seq_ = 0;
  for (const auto& [origin, seq] : vector_) {
    if (origin == cfg_.relay_name) seq_ = seq;
  }
  own_log_.SetOwn(seq_);
  // Never reuse an id: move the clock past the newest id in the log.
  auto st = w.db().Prepare("SELECT COALESCE(max(id), 0) FROM envelopes");
  if (!st.ok()) return st.status();
  auto r = st->Step();
  if (!r.ok()) return r.status();
  hlc_.Observe(st->U64(0), clock_->NowMs());
  auto max_pos = w.MaxPos();
  if (!max_pos.ok()) return max_pos.status();
  batch_max_pos_ = *max_pos;
  members_.clear();
  users_.clear();
  timers_.clear();
  quarantined_.clear();
  auto q = w.Meta("quarantined");
  if (q.ok() && q.value()) {
    std::string_view rest = *q.value();
    while (!rest.empty()) {
      size_t comma = rest.find(',');
      quarantined_.insert(std::string(rest.substr(0, comma)));
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  quarantined_snapshot_.assign(quarantined_.begin(), quarantined_.end());
  return Status::Ok();
}

Status Core::Start() {
  static std::once_flag once;
  std::call_once(once, [] { evthread_use_pthreads(); });
  Status s = LoadState();
  if (!s.ok()) return s;
  LoadLastSeen();
  StartRecovery();
  committed_pos_ = batch_max_pos_;
  {
    std::lock_guard<std::mutex> lock(snapshot_mu_);
    vector_snapshot_ = vector_;
  }
  auto fd = store_.writer().DeferSyncs();
  if (fd.ok()) {
    sync_fd_ = *fd;
    syncer_ = std::thread([this] { RunSyncer(); });
  } else {
    log::Warn("store: commits sync inline", {{"reason", fd.status().message()}});
  }
  event_config* ecfg = event_config_new();
  event_config_set_flag(ecfg, EVENT_BASE_FLAG_PRECISE_TIMER);
  base_.reset(event_base_new_with_config(ecfg));
  event_config_free(ecfg);
  if (!base_) return Internal("libevent: cannot create the core loop");
  wake_.reset(event_new(base_.get(), -1, 0, &Core::OnWake, this));
  expiry_tick_.reset(event_new(base_.get(), -1, EV_PERSIST, &Core::OnExpiryTick, this));
  const timeval every_second{1, 0};
  event_add(expiry_tick_.get(), &every_second);
  signer_ = std::make_unique<BatchSigner>(key_, BatchSigner::SeveralCpus());
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "chatd-core");
    event_base_loop(base_.get(), EVLOOP_NO_EXIT_ON_EMPTY);
  });
  if (own_log_.Waiting()) Post([this] { CheckRecovery(); });  // no peers, or no wait: over at once
  return Status::Ok();
}

void Core::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    stopping_ = true;
    // Our users still online were seen until now: the drain's batches store that too.
    if (!closed_ && wake_) {
      inbox_.push_back([this] {
        NoteOnlineSeen(clock_->NowMs());
        SaveLastSeen();
      });
    }
  }
  if (thread_.joinable()) {
    event_active(wake_.get(), EV_READ, 0);
    thread_.join();
  }
  if (syncer_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(sync_mu_);
      sync_stop_ = true;
    }
    sync_cv_.notify_all();
    syncer_.join();
    sync_fd_ = -1;
    Status s = store_.writer().ResumeSyncs();
    if (!s.ok()) log::Error("store: final sync failed", {{"error", s.message()}});
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    inbox_.clear();
  }
  wake_.reset();
  expiry_tick_.reset();
  base_.reset();
}

bool Core::Post(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_ || !wake_) return false;
  inbox_.push_back(std::move(fn));
  event_active(wake_.get(), EV_READ, 0);
  return true;
}

void Core::OnWake(evutil_socket_t, short, void* arg) { static_cast<Core*>(arg)->RunBatch(); }

void Core::OnExpiryTick(evutil_socket_t, short, void* arg) {
  auto* core = static_cast<Core*>(arg);
  // A restored store's wait for its peers ends at the latest after federation.restore_wait.
  if (core->own_log_.Waiting()) core->Post([core] { core->CheckRecovery(); });
  core->CheckScheduled();
  if (!core->presence_posted_ && core->PresenceDue(core->clock_->NowMs())) {
    core->presence_posted_ = core->Post([core] {
      core->presence_posted_ = false;
      core->PresenceTick();
    });
  }
  if (core->expiry_posted_) return;
  // A read between batches on the writer connection: no transaction, nothing written, so
  // an idle relay does not commit (or fdatasync) once a second.
  auto next = core->store_.writer().NextExpiry();
  if (!next.ok()) {
    log::Warn("store: cannot read the next disappearing message", {{"error", next.status().message()}});
    return;
  }
  if (*next == 0 || *next > core->clock_->NowMs()) return;
  core->expiry_posted_ = core->Post([core] { core->ExpireDue(); });
}

void Core::CheckScheduled() {
  // Not while recovering our own log: a row sent in the lost tail comes back with it (its
  // client key "sched:<id>" then answers the send again instead of a second message).
  if (scheduled_posted_ || own_log_.Holding()) return;
  auto next = store_.writer().NextScheduled();  // a read between batches, as for expiry
  if (!next.ok()) {
    log::Warn("store: cannot read the next scheduled message", {{"error", next.status().message()}});
    return;
  }
  if (*next == 0 || *next > clock_->NowMs()) return;
  scheduled_posted_ = Post([this] { SendScheduled(); });
}

void Core::ExpireDue() {
  constexpr int kPerBatch = 1000;  // bounds the batch; the rest goes in the next one
  expiry_posted_ = false;
  auto& w = store_.writer();
  // In a savepoint: a failure here costs this sweep only, not the batch's other commands.
  if (!w.Savepoint().ok()) return;
  auto n = w.ExpireDue(clock_->NowMs(), kPerBatch);
  if (!n.ok()) {
    (void)w.RollbackToSavepoint();
    log::Error("store: cannot erase disappearing messages", {{"error", n.status().message()}});
    return;
  }
  (void)w.Release();
  if (*n > 0) {
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_.expired += static_cast<uint64_t>(*n);
  }
  if (*n == kPerBatch) expiry_posted_ = Post([this] { ExpireDue(); });
}

void Core::RunBatch() {
  std::vector<std::function<void()>> items;
  bool stopping;
  {
    std::lock_guard<std::mutex> lock(mu_);
    items.swap(inbox_);
    stopping = stopping_;
  }
  auto& w = store_.writer();
  size_t max_batch = static_cast<size_t>(std::max(1, cfg_.commit_max_batch));
  for (size_t start = 0; start < items.size(); start += max_batch) {
    size_t end = std::min(items.size(), start + max_batch);
    batch_failed_ = false;
    Status s = w.Begin();
    if (!s.ok()) {
      log::Error("store: cannot begin a transaction", {{"error", s.message()}});
      batch_failed_ = true;
    }
    for (size_t i = start; i < end; ++i) items[i]();
    SignPending();
    bool ok = !batch_failed_;
    if (ok) {
      s = w.Commit();
      if (!s.ok()) {
        log::Error("store: commit failed; the batch is rolled back", {{"error", s.message()}});
        ok = false;
      }
    }
    Committed c;
    c.ok = ok;
    c.callbacks = std::move(after_commit_);
    after_commit_.clear();
    if (ok) {
      c.pos = batch_max_pos_;
      c.deliveries = std::move(pending_);
      c.vector = vector_;
    } else {
      (void)w.Rollback();
      Status ls = LoadState();
      if (!ls.ok()) log::Error("store: cannot reload state after a failed batch", {{"error", ls.message()}});
    }
    pending_.clear();
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      stats_.batches++;
      stats_.commands += end - start;
      if (!ok) stats_.commit_failures++;
    }
    if (sync_fd_ >= 0) {
      // Durable after the next fdatasync; the core goes on with the next batch meanwhile.
      // (A failed batch queues too, so that replies leave in commit order.)
      {
        std::lock_guard<std::mutex> lock(sync_mu_);
        to_sync_.push_back(std::move(c));
      }
      sync_cv_.notify_all();
    } else {
      Finish(c);
    }
    store_.ResetWalIfDue(sync_fd_);  // between transactions: keeps the WAL bounded
  }
  if (stopping) {
    // Anything posted while we ran this batch is taken too before the loop exits.
    bool more;
    {
      std::lock_guard<std::mutex> lock(mu_);
      more = !inbox_.empty();
      if (!more) closed_ = true;  // later posts are refused instead of lost
    }
    if (more) {
      RunBatch();
      return;
    }
    DrainSyncer();
    event_base_loopbreak(base_.get());
  }
}

void Core::Finish(Committed& c) {
  if (c.ok) {
    committed_pos_.store(c.pos, std::memory_order_release);
    {
      std::lock_guard<std::mutex> lock(snapshot_mu_);
      vector_snapshot_ = std::move(c.vector);
    }
    if (on_durable_) on_durable_();
  }
  for (auto& cb : c.callbacks) cb(c.ok);
  if (!c.deliveries.empty() && sink_) sink_->Deliver(std::move(c.deliveries));
}

void Core::RunSyncer() {
  pthread_setname_np(pthread_self(), "chatd-sync");
  std::unique_lock<std::mutex> lock(sync_mu_);
  for (;;) {
    sync_cv_.wait(lock, [&] { return sync_stop_ || !to_sync_.empty(); });
    if (to_sync_.empty()) return;  // stopping, and everything has finished
    std::deque<Committed> round;
    round.swap(to_sync_);
    syncing_ = true;
    lock.unlock();
    bool any_ok = std::any_of(round.begin(), round.end(), [](const Committed& c) { return c.ok; });
    const int64_t t0 = MonoNs();
    if (any_ok && ::fdatasync(sync_fd_) != 0) {
      // The kernel may have dropped the dirty pages: nothing can tell what is on disk now.
      // Acknowledging would be a lie and retrying can falsely succeed, so stop here; on
      // restart SQLite recovers whatever reached the disk, and nothing unsynced was acked.
      int err = errno;
      log::Error("store: fdatasync of the WAL failed; stopping without acknowledging the batch",
                 {{"error", std::strerror(err)}});
      std::abort();
    }
    if (any_ok) RecordSync(static_cast<double>(MonoNs() - t0) / 1e9);
    for (auto& c : round) Finish(c);
    lock.lock();
    syncing_ = false;
    sync_cv_.notify_all();
  }
}

void Core::DrainSyncer() {
  if (sync_fd_ < 0) return;
  std::unique_lock<std::mutex> lock(sync_mu_);
  sync_cv_.wait(lock, [&] { return to_sync_.empty() && !syncing_; });
}

Result<uint64_t> Core::Emit(crypto::Envelope& env) {
  // A peer holds (or may hold) envelopes of ours beyond our log: the next seq may be taken.
  // Refused before anything is written, so the rest of the batch goes on (relay/recovery.h).
  if (own_log_.Holding()) return RecoveringStatus();
  int64_t now = clock_->NowMs();
  env.origin = cfg_.relay_name;
  env.seq = seq_ + 1;
  if (env.id == 0) env.id = hlc_.Next(now);
  env.deps = vector_;
  if (env.created_at == 0) env.created_at = now;  // an op may fix it to the time it validated
  Status s = crypto::SealBody(env);
  if (!s.ok()) {
    batch_failed_ = true;
    return s;
  }
  uint64_t pos = batch_max_pos_ + 1;
  s = store_.writer().ApplyViews(env, pos);
  if (!s.ok()) {
    batch_failed_ = true;
    return s;
  }
  seq_ = env.seq;
  own_log_.SetOwn(seq_);
  batch_max_pos_ = pos;
  auto it = std::lower_bound(vector_.begin(), vector_.end(), env.origin,
                             [](const auto& p, const std::string& o) { return p.first < o; });
  if (it != vector_.end() && it->first == env.origin) it->second = env.seq;
  else vector_.insert(it, {env.origin, env.seq});
  signer_->Submit(env);  // signed on the other CPU while the batch goes on
  unsigned_pos_.push_back(pos);
  std::lock_guard<std::mutex> lock(stats_mu_);
  stats_.envelopes++;
  return pos;
}

void Core::SignPending() {
  if (unsigned_pos_.empty()) return;
  std::vector<crypto::Envelope> envs = signer_->Collect();
  if (!batch_failed_) {
    auto& w = store_.writer();
    for (size_t i = 0; i < envs.size(); ++i) {
      auto pos = w.Append(envs[i], /*apply_views=*/false, unsigned_pos_[i]);
      if (!pos.ok()) {
        log::Error("store: cannot append an envelope", {{"error", pos.status().message()}});
        batch_failed_ = true;
        break;
      }
      Replicate(std::move(envs[i]));
    }
  }
  unsigned_pos_.clear();
}

void Core::Publish(const crypto::Envelope& env, uint64_t pos, uint64_t skip_session, uint64_t extra_user) {
  store::EnvelopeRow row{pos, env};
  std::string event = events::EventFor(row, store_.writer());
  if (event.empty()) return;
  std::shared_ptr<const std::vector<uint64_t>> users;
  if (env.chat_id == 0) {
    users = std::make_shared<const std::vector<uint64_t>>(std::vector<uint64_t>{env.author});
  } else {
    users = MembersOf(env.chat_id);
  }
  if (extra_user && std::find(users->begin(), users->end(), extra_user) == users->end()) {
    auto copy = std::make_shared<std::vector<uint64_t>>(*users);
    copy->push_back(extra_user);
    users = std::move(copy);
  }
  Delivery d;
  d.type = Delivery::Type::kUsers;
  d.session_id = skip_session;
  d.users = std::move(users);
  d.frame = MakeTextFrame(event);
  d.cursor = pos;
  pending_.push_back(std::move(d));
}

void Core::PublishEvent(uint64_t chat_id, std::string_view event_json, uint64_t pos, uint64_t skip_session) {
  Delivery d;
  d.type = Delivery::Type::kUsers;
  d.session_id = skip_session;
  d.users = MembersOf(chat_id);
  d.frame = MakeTextFrame(event_json);
  d.cursor = pos;
  pending_.push_back(std::move(d));
}

const store::UserRow* Core::UserOf(uint64_t user_id) {
  auto it = users_.find(user_id);
  if (it != users_.end()) return &it->second;
  auto u = store_.writer().UserById(user_id);
  if (!u.ok() || !u.value()) return nullptr;
  if (users_.size() > 100000) users_.clear();  // bound the cache
  return &(users_[user_id] = std::move(*u.value()));
}

std::shared_ptr<const std::vector<uint64_t>> Core::MembersOf(uint64_t chat_id) {
  auto it = members_.find(chat_id);
  if (it != members_.end()) return it->second;
  auto list = std::make_shared<std::vector<uint64_t>>();
  auto st = store_.writer().db().Prepare("SELECT user_id FROM members WHERE chat_id=?");
  if (st.ok()) {
    st->Bind(1, chat_id);
    for (;;) {
      auto r = st->Step();
      if (!r.ok() || !r.value()) break;
      list->push_back(st->U64(0));
    }
  }
  std::shared_ptr<const std::vector<uint64_t>> frozen = std::move(list);
  if (members_.size() > 100000) members_.clear();  // bound the cache
  members_[chat_id] = frozen;
  return frozen;
}

int64_t Core::TimerOf(uint64_t chat_id) {
  auto it = timers_.find(chat_id);
  if (it != timers_.end()) return it->second;
  auto chat = store_.writer().Chat(chat_id, false);
  int64_t seconds = chat.ok() && chat.value() ? chat.value()->disappearing_seconds : 0;
  if (timers_.size() > 100000) timers_.clear();  // bound the cache
  timers_[chat_id] = seconds;
  return seconds;
}

Result<std::string> Core::RoleOrNotMember(uint64_t chat_id, uint64_t user_id) {
  auto role = store_.writer().RoleOf(chat_id, user_id);
  if (!role.ok()) return role.status();
  if (!role.value()) {
    auto chat = store_.writer().Chat(chat_id, false);
    if (chat.ok() && !chat.value()) return NotFound("no such chat");
    return Forbidden("you are not a member of this chat", "not_member");
  }
  return std::move(*role.value());
}

void Core::RecordSync(double seconds) {
  std::lock_guard<std::mutex> lock(stats_mu_);
  for (size_t i = 0; i < kSyncBuckets; ++i) {
    if (seconds <= kSyncBucketsS[i]) stats_.sync_le[i]++;
  }
  stats_.syncs++;
  stats_.sync_seconds += seconds;
}

CoreStats Core::stats() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return stats_;
}

}  // namespace chatd
