// store/store.h — the relay's SQLite store: the envelope log and the views derived from it.
//
// Ownership and threads:
//  * Store owns one writer connection and a pool of read connections (WAL mode).
//  * Writer is used by the core thread only (the single writer). It appends envelopes to
//    the log and applies them to the views in the same transaction; the core batches many
//    appends per transaction (group commit, synchronous=FULL).
//  * ReaderPool::Acquire() is thread-safe; the returned Lease gives one thread exclusive use
//    of a read connection until it is destroyed.
// The envelope log (table `envelopes`) is the source of truth; users, chats, members,
// messages and reactions are views that RebuildViews() can re-derive from it. Local-only
// tables (credentials, refresh tokens, last-seen times) hold what never leaves this relay.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_set>
#include <vector>

#include "base/status.h"
#include "crypto/envelope.h"
#include "store/db.h"
#include "store/search.h"

namespace chatd::store {

// A user's privacy settings (the `privacy` view): who sees their presence and last seen,
// profile photo and status message ("about"), who may add them to groups ("everyone",
// "contacts" or "nobody"), and whether others see when they have read a message.
struct Privacy {
  std::string last_seen = "everyone", profile_photo = "everyone", about = "everyone", groups = "everyone";
  bool read_receipts = true;
  // Whether an audience setting lets a viewer in; `contact`: the viewer is a contact.
  static bool Allows(std::string_view audience, bool contact) {
    return audience == "everyone" || (audience == "contacts" && contact);
  }
};

struct UserRow {
  uint64_t user_id = 0;
  std::string username, relay, first_name, last_name, status_message, profile_picture_url;
  int64_t created_at = 0;
  bool disabled = false;
  Privacy privacy;
  std::string handle() const { return username + "@" + relay; }
};

struct Credentials {
  uint64_t user_id = 0;
  std::string email, password_hash;
};

struct RefreshRow {
  uint64_t user_id = 0, device_id = 0;
  int64_t expires_at = 0;
  bool revoked = false;
};

// One row of the revocations view: tokens of user_id (device_id 0 = of every device)
// issued before not_before (ms since the epoch) are refused; `at` is when the newest
// revoking envelope was created.
struct RevocationRow {
  uint64_t user_id = 0, device_id = 0;
  int64_t not_before = 0, at = 0;
};

struct MemberRow {
  uint64_t user_id = 0;
  std::string role;  // "admin" | "moderator" | "member"
};

struct ChatRow {
  uint64_t chat_id = 0;
  std::string chat_type, chat_name, chat_description;
  uint64_t created_by = 0;
  int64_t created_at = 0;
  int64_t disappearing_seconds = 0;
  std::vector<MemberRow> members;
};

struct ReactionAgg {
  std::string reaction_type;
  std::vector<uint64_t> users;
};

struct MessageRow {
  uint64_t message_id = 0, chat_id = 0, sender_id = 0;
  std::string message_type, content;
  uint64_t reply_to = 0, file_id = 0;
  int64_t created_at = 0, edited_at = 0;
  int64_t expires_at = 0;  // a disappearing message: erased at this time (ms); 0 = never
  uint64_t forwarded_chat_id = 0, forwarded_message_id = 0;  // a forwarded copy of that message
  bool deleted = false;
  bool encrypted = false;  // end-to-end encrypted: content is opaque ciphertext, never indexed
  uint64_t pos = 0;
  // Filled by History(): sender profile and reactions.
  std::string sender_username, sender_relay, sender_picture;
  std::vector<ReactionAgg> reactions;
};

struct MemberEventRow {
  uint64_t id = 0;
  std::string origin;
  uint64_t seq = 0;
  std::string op, role;  // op: "add" | "remove" | "role"
};

// One event of a (blocker, blocked) pair's history (block_events), newest first.
struct BlockEventRow {
  uint64_t id = 0;
  std::string origin;
  uint64_t seq = 0;
  bool blocked = false;  // a block (true) or an unblock
};

struct BlockRow {
  uint64_t user_id = 0;  // the blocked user
  int64_t since = 0;
};

struct ContactRequestRow {
  uint64_t request_id = 0, from_user = 0, to_user = 0;
  std::string origin;
  uint64_t seq = 0;
  int64_t created_at = 0;
  std::string status;  // "pending" | "accepted" | "declined" | "cancelled"
};

struct ContactRow {
  uint64_t user_id = 0;  // the other user
  int64_t since = 0;
};

// A user's report of a message or another user, for this relay's moderators (local only).
struct ReportRow {
  uint64_t report_id = 0, reporter = 0, user_id = 0, chat_id = 0, message_id = 0;
  std::string reason;
  int64_t created_at = 0;
  std::string status;  // "open" | "resolved"
  int64_t resolved_at = 0;
  std::string resolution;
};

// When one of this relay's users was last seen here (the local last_seen table, ms).
struct LastSeenRow {
  uint64_t user_id = 0;
  int64_t at = 0;
};

// A file's metadata (the files view, from file_create envelopes): the blob is named by sha256.
struct FileRow {
  uint64_t file_id = 0, chat_id = 0, uploader_id = 0;
  std::string origin, original_filename, mime_type, file_type, sha256;
  uint64_t file_size = 0;
  int64_t created_at = 0;
  uint64_t seq = 0;  // its file_create's (origin, seq): for "in a post's causal past"
};

// A resumable upload in progress (local only, never replicated; see relay/files.h).
struct UploadRow {
  uint64_t upload_id = 0, user_id = 0, chat_id = 0;
  std::string file_name, mime_type;
  uint64_t file_size = 0, chunk_size = 0;
  int64_t created_at = 0, expires_at = 0;
  int chunk_count() const { return chunk_size ? static_cast<int>((file_size + chunk_size - 1) / chunk_size) : 0; }
};

// A message scheduled to be sent at send_at (local only; see relay/ops_scheduled.cpp).
struct ScheduledRow {
  uint64_t scheduled_id = 0, user_id = 0, device_id = 0, chat_id = 0;
  int64_t send_at = 0, created_at = 0, done_at = 0;
  std::string request;  // the send as JSON
  std::string status;   // "pending" | "sent" | "failed" | "cancelled"
  uint64_t message_id = 0;
  std::string error;
};

// A device's published keys (the device_keys view; docs/ENVELOPE.md kind 5), base64.
struct DeviceKeysRow {
  uint64_t user_id = 0, device_id = 0;
  uint64_t id = 0;  // the deciding device_keys envelope
  std::string origin, identity_key, spk, spk_sig;
  uint32_t spk_id = 0;
  bool removed = false;
  int64_t updated_at = 0;
  int64_t prekeys_left = 0;  // unclaimed one-time prekeys held here under identity_key
};

// A one-time prekey handed out by a claim.
struct PrekeyRow {
  uint32_t key_id = 0;
  std::string public_key;
};

struct ChatSummary {
  ChatRow chat;
  std::optional<MessageRow> last_message;
  int64_t unread = 0;
};

struct EnvelopeRow {
  uint64_t pos = 0;
  crypto::Envelope env;
};

using VersionVector = std::vector<std::pair<std::string, uint64_t>>;  // sorted by origin

// Read queries over one connection. Used through Writer (core thread) or a reader Lease.
class Queries {
 public:
  explicit Queries(Db& db) : db_(db) {}
  Result<std::optional<UserRow>> UserById(uint64_t user_id);
  Result<std::optional<UserRow>> UserByHandle(std::string_view handle);
  Result<std::vector<UserRow>> SearchUsers(std::string_view query, int limit);
  // Users by handle, after `after_handle` ("" = from the start), disabled ones included;
  // only those homed on `relay` unless it is empty. At most limit rows.
  Result<std::vector<UserRow>> ListUsers(std::string_view relay, std::string_view after_handle, int limit);
  // Devices of a user with an unexpired, unrevoked refresh token (home relay only).
  Result<int64_t> ActiveDevices(uint64_t user_id, int64_t now_ms);
  // Every user-wide revocation, and device revocations created at or after since_ms.
  Result<std::vector<RevocationRow>> Revocations(int64_t since_ms);
  Result<std::vector<uint64_t>> DisabledUsers();
  Result<std::optional<Credentials>> CredentialsOf(uint64_t user_id);
  Result<bool> EmailTaken(std::string_view email);
  Result<std::optional<RefreshRow>> RefreshToken(std::string_view token_hash);
  Result<std::optional<ChatRow>> Chat(uint64_t chat_id, bool with_members);
  Result<std::vector<ChatSummary>> ChatsOf(uint64_t user_id);
  Result<std::optional<std::string>> RoleOf(uint64_t chat_id, uint64_t user_id);
  // A user's membership history in a chat, newest first.
  Result<std::vector<MemberEventRow>> MemberEvents(uint64_t chat_id, uint64_t user_id);
  Result<std::optional<uint64_t>> DirectChat(std::string_view direct_key);
  Result<std::optional<MessageRow>> Message(uint64_t message_id);
  // What validity needs of a message, whatever its timer and whether its post arrived
  // whole: message_id, chat_id, sender_id, created_at, file_id, deleted (a post kept only
  // as a stub in erased_posts reads as deleted, file unknown).
  Result<std::optional<MessageRow>> MessageFacts(uint64_t message_id);
  Result<std::optional<uint64_t>> MessageByClientKey(uint64_t sender_id, std::string_view key);
  // Newest first, ids < before_id (0 = from the newest), at most limit rows, only messages
  // at log positions <= max_pos (the relay's durable position: a batch is readable as soon
  // as it commits, but history shows a new message only once its fdatasync is done).
  // Messages `viewer` hid for themselves (delete for me) are left out.
  Result<std::vector<MessageRow>> History(uint64_t chat_id, uint64_t before_id, int limit,
                                          uint64_t max_pos = UINT64_MAX, uint64_t viewer = 0);
  // Replies to parent_id in chat_id, oldest first, ids > after_id, at most limit, only at
  // log positions <= max_pos (as History).
  Result<std::vector<MessageRow>> Thread(uint64_t chat_id, uint64_t parent_id, uint64_t after_id, int limit,
                                         uint64_t max_pos = UINT64_MAX, uint64_t viewer = 0);
  Result<bool> Hidden(uint64_t user_id, uint64_t message_id);  // hidden for that user (delete for me)
  // Blocks and contacts (store/social.cpp).
  Result<std::vector<BlockEventRow>> BlockEvents(uint64_t blocker, uint64_t blocked);  // newest first
  Result<bool> Blocked(uint64_t blocker, uint64_t blocked);                            // as of everything applied
  Result<std::vector<BlockRow>> BlocksOf(uint64_t blocker);                            // oldest first
  Result<std::optional<ContactRequestRow>> ContactRequest(uint64_t request_id);
  // The pending request from -> to, if any.
  Result<std::optional<ContactRequestRow>> PendingRequest(uint64_t from_user, uint64_t to_user);
  // Pending requests to or from user_id, oldest first.
  Result<std::vector<ContactRequestRow>> PendingRequestsOf(uint64_t user_id);
  Result<std::vector<ContactRow>> ContactsOf(uint64_t user_id);
  Result<bool> IsContact(uint64_t a, uint64_t b);
  // Who shares a chat with the user or is their contact (the presence audience, privacy
  // aside).
  Result<std::vector<uint64_t>> PresenceAudience(uint64_t user_id);
  // Device keys (store/device_keys.cpp). Live devices are neither removed nor revoked
  // (logged out: a session_revoke of the device, or of every device issued before their
  // last update; a disabled account): those are what clients see and claim.
  Result<std::vector<DeviceKeysRow>> DevicesOf(uint64_t user_id);  // live ones, by device id
  Result<std::optional<DeviceKeysRow>> DeviceKeys(uint64_t user_id, uint64_t device_id, bool live_only);
  // The public key stored under key_id for that device and identity, claimed or not.
  Result<std::optional<std::string>> PrekeyPublicKey(uint64_t user_id, uint64_t device_id,
                                                     std::string_view identity_key, uint32_t key_id);
  // Reports (local): by status ("" = all), ids > after_id, oldest first; and how many a
  // user filed since a time (the per-user bound).
  Result<std::vector<ReportRow>> Reports(std::string_view status, uint64_t after_id, int limit);
  Result<std::optional<ReportRow>> Report(uint64_t report_id);
  Result<int64_t> ReportsFiledSince(uint64_t reporter, int64_t since_ms);
  // Last-seen times (local, store/last_seen.cpp): the newest `limit`, newest first.
  Result<std::vector<LastSeenRow>> LastSeen(int limit);
  // Scheduled messages (store/social.cpp): a user's, by send_at (cancelled ones left out);
  // how many are pending; the pending ones due at now_ms, oldest first; the earliest
  // pending send_at (0 if none).
  Result<std::vector<ScheduledRow>> ScheduledOf(uint64_t user_id);
  Result<std::optional<ScheduledRow>> Scheduled(uint64_t scheduled_id);
  Result<int64_t> PendingScheduledOf(uint64_t user_id);
  Result<std::vector<ScheduledRow>> DueScheduled(int64_t now_ms, int limit);
  Result<int64_t> NextScheduled();
  // Envelopes after `cursor` and at or below `max_pos` (0 = no bound) in chats the user
  // belongs to, the user's own system events and those naming them (system_audience:
  // contact requests and decisions), in log order, at most limit.
  Result<std::vector<EnvelopeRow>> EnvelopesSince(uint64_t user_id, uint64_t cursor, int limit,
                                                  uint64_t max_pos = 0);
  Result<std::vector<EnvelopeRow>> EnvelopesFrom(std::string_view origin, uint64_t after_seq, int limit);
  // Per member: (user_id, delivered_up_to, read_up_to); members without receipts get 0s.
  // As `viewer` may see them: a member who turned read receipts off (privacy) shows their
  // reads to nobody else, as deliveries only.
  Result<std::vector<std::tuple<uint64_t, uint64_t, uint64_t>>> Receipts(uint64_t chat_id, uint64_t viewer);
  Result<uint64_t> MaxPos();
  // The stored header hash of (origin, seq), to tell a duplicate from equivocation.
  Result<std::optional<std::string>> HeaderHashAt(std::string_view origin, uint64_t seq);
  Result<VersionVector> Vector();
  Result<uint64_t> CountEnvelopes();
  Result<std::optional<std::string>> Meta(std::string_view key);
  Result<std::optional<FileRow>> File(uint64_t file_id);
  // Whether user_id may read the file: a member of its chat, or of a chat where a message
  // that is not deleted (a forwarded copy) shows it.
  Result<bool> CanReadFile(const FileRow& f, uint64_t user_id);
  // Whether the file may still be read and sent: a message that is not deleted and has not
  // disappeared shows it, or it was never sent and was uploaded after unsent_since_ms.
  Result<bool> FileInUse(uint64_t file_id, int64_t now_ms, int64_t unsent_since_ms);
  // Whether some file in use (as FileInUse) has this content (sha256 hex).
  Result<bool> ContentInUse(std::string_view sha256, int64_t now_ms, int64_t unsent_since_ms);
  Result<std::optional<UploadRow>> Upload(uint64_t upload_id);
  // Ids of uploads whose expires_at is <= now_ms, at most limit.
  Result<std::vector<uint64_t>> ExpiredUploads(int64_t now_ms, int limit);
  // Full-text search (store/search.h; needs the index attached as "search", as ReaderPool
  // does): messages matching `match` (from SearchMatch), newest first, below before_id
  // (0 = from the newest), in chat_id (0 = in every chat user_id belongs to; with a chat_id
  // the caller has checked the membership). At most limit hits.
  Result<SearchPage> Search(uint64_t user_id, std::string_view match, uint64_t chat_id, uint64_t before_id,
                            int limit);

 protected:
  Status FillReactions(MessageRow& m);
  // Steps a query of kMessageCols plus the sender's username, relay and picture to its end;
  // the messages with their reactions.
  Result<std::vector<MessageRow>> MessagesWithSenders(Stmt& st);
  Db& db_;
};

class Writer : public Queries {
 public:
  explicit Writer(std::unique_ptr<Db> db) : Queries(*db), owned_(std::move(db)) {}
  Status Begin() {
    erase_on_append_.clear();
    return db_.Run("BEGIN IMMEDIATE");
  }
  Status Commit() { return db_.Run("COMMIT"); }
  Status Rollback() {
    erase_on_append_.clear();
    return db_.Run("ROLLBACK");
  }
  Status Savepoint() { return db_.Run("SAVEPOINT cmd"); }
  Status Release() { return db_.Run("RELEASE cmd"); }
  Status RollbackToSavepoint() {
    Status s = db_.Run("ROLLBACK TO cmd");
    return s.ok() ? db_.Run("RELEASE cmd") : s;
  }
  // Deferred durability (store/walvfs.h): afterwards COMMIT no longer waits for the disk,
  // and a commit is durable only once an fdatasync() on the returned descriptor, begun
  // after the COMMIT returned, has succeeded. kUnavailable if not possible here.
  Result<int> DeferSyncs();
  Status ResumeSyncs();  // COMMIT is durable again; syncs what was written

  // Appends a sealed envelope to the log and applies it to the views. Returns its log
  // position (the client cursor): `pos` if given (it must be above every pos in the log),
  // else the next one. A duplicate (origin, seq) is kConflict. `valid` = false records a
  // signed envelope that is invalid against its causal past (it applies to no view, now or
  // in RebuildViews).
  Result<uint64_t> Append(const crypto::Envelope& env, bool apply_views = true, uint64_t pos = 0, bool valid = true);
  // Applies an envelope to the views as if it were in the log at `pos` (the core applies
  // its own envelopes before they are signed, and appends them signed before the commit).
  // A delete that erases an envelope of the same batch, not in the log yet, makes its
  // Append store it erased.
  Status ApplyViews(const crypto::Envelope& env, uint64_t pos);
  Status PutCredentials(uint64_t user_id, std::string_view email, std::string_view password_hash);
  Status PutRefreshToken(std::string_view token_hash, uint64_t user_id, uint64_t device_id,
                         int64_t now_ms, int64_t expires_at_ms);
  // Marks a token revoked; returns false if it did not exist or was already revoked.
  Result<bool> RevokeRefreshToken(std::string_view token_hash, int64_t now_ms);
  Status SetMeta(std::string_view key, std::string_view value);
  // Sets the last-seen time of each row's user (local; one statement per row, in the
  // caller's transaction).
  Status PutLastSeen(const std::vector<LastSeenRow>& rows);
  // Files a report (report_id and status are assigned); returns its id.
  Result<uint64_t> PutReport(const ReportRow& r);
  // Marks an open report resolved; false if there is no open report with that id.
  Result<bool> ResolveReport(uint64_t report_id, std::string_view resolution, int64_t now_ms);
  Status PutScheduled(const ScheduledRow& r);
  // pending → status (sent, failed, cancelled); false if it was not pending.
  Result<bool> FinishScheduled(uint64_t scheduled_id, std::string_view status, uint64_t message_id,
                               std::string_view error, int64_t now_ms);
  // Drops finished (sent, failed, cancelled) rows done before `before_ms`.
  Status PruneScheduled(int64_t before_ms);
  // One-time prekeys (local): adds keys under an identity (an existing key id is kept);
  // hands out the lowest unclaimed one (marked claimed, never handed out again); drops the
  // device's keys of every other identity ("" = all of them).
  Status PutPrekeys(uint64_t user_id, uint64_t device_id, std::string_view identity_key,
                    const std::vector<PrekeyRow>& keys, int64_t now_ms);
  Result<std::optional<PrekeyRow>> ClaimPrekey(uint64_t user_id, uint64_t device_id, std::string_view identity_key,
                                               int64_t now_ms);
  Status DropPrekeys(uint64_t user_id, uint64_t device_id, std::string_view keep_identity);
  Status PutUpload(const UploadRow& u);
  Status DeleteUpload(uint64_t upload_id);
  // Drops every view and re-derives it from the log, skipping the envelopes appended as
  // invalid (chatctl store rebuild).
  Status RebuildViews();
  // Disappearing messages: erases the body and salt of up to `limit` envelopes whose
  // expires_at is <= now_ms (the signed header stays), and drops the messages they posted
  // from the views, with their reactions. Returns how many envelopes it erased.
  Result<int> ExpireDue(int64_t now_ms, int limit);
  // The earliest expires_at still to be erased, or 0 if none.
  Result<int64_t> NextExpiry();
  Db& db() { return db_; }

 private:
  std::unique_ptr<Db> owned_;
  std::unordered_set<uint64_t> erase_on_append_;  // positions of this transaction to append erased
};

class ReaderPool {
 public:
  class Lease {
   public:
    Lease(ReaderPool* pool, std::unique_ptr<Db> db) : pool_(pool), db_(std::move(db)), q_(*db_) {}
    Lease(Lease&&) = delete;
    ~Lease() { pool_->Return(std::move(db_)); }
    Queries* operator->() { return &q_; }
    Queries& q() { return q_; }

   private:
    ReaderPool* pool_;
    std::unique_ptr<Db> db_;
    Queries q_;
  };
  // `search_path`: the search index to attach to each connection as "search" ("" = none).
  ReaderPool(std::string path, int size, std::string search_path = {})
      : path_(std::move(path)), search_path_(std::move(search_path)), size_(size) {}
  // Blocks while all connections are in use. Opens connections lazily.
  Result<std::unique_ptr<Lease>> Acquire();
  // Closes the connections not in use (at shutdown, once nothing reads any more, so that
  // the search index's own writer is the last to close search.db and removes its WAL).
  void CloseIdle();

 private:
  void Return(std::unique_ptr<Db> db);
  Result<std::unique_ptr<Db>> OpenOne();
  std::string path_;
  std::string search_path_;
  int size_;
  int opened_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Db>> free_;
};

class Store {
 public:
  static constexpr const char* kFileName = "chatd.db";
  // The meta row `chatctl backup restore` writes into the store it restores (a JSON note,
  // never empty); chatd clears it (to "") once it has its own log back from its peers
  // (relay/recovery.h).
  static constexpr const char* kRestoredMeta = "restored";
  // Opens DIR/chatd.db, creating it if `create`, and migrates the schema; creates or
  // migrates the search index DIR/search.db (store/search.h) too, which readers attach.
  static Result<std::unique_ptr<Store>> Open(const std::string& data_dir, int read_connections,
                                             bool create);
  Writer& writer() { return *writer_; }
  ReaderPool& readers() { return *readers_; }
  // Moves WAL checkpoints off the writer: the writer stops auto-checkpointing and a
  // background thread checkpoints (PASSIVE) every 200 ms, every 20 ms while the WAL is
  // past its bound. StopCheckpointer() runs a final full checkpoint. Both are called by the
  // daemon's main thread.
  //
  // Keeping the WAL bounded under sustained writes (`wal_max_bytes`, store.wal_max_mb).
  // SQLite starts the WAL over from its beginning only when a write begins after a
  // checkpoint copied EVERY frame back, while no reader is in the WAL. With a commit every
  // few milliseconds the background checkpointer never catches the last frames, and the
  // WAL grew without bound (up to 624 MB in 10 s of benchmark load), every fdatasync then
  // also extending the file. So once the WAL holds `wal_max_bytes` and the checkpointer has
  // copied back all but kWalResetRest frames, it asks the writer to copy the rest itself
  // between two transactions (no frame can be appended meanwhile); the writer's next
  // commit then starts the WAL over.
  void StartCheckpointer(int64_t wal_max_bytes);
  void StopCheckpointer();
  ~Store() { StopCheckpointer(); }
  static constexpr int kWalResetRest = 512;
  static constexpr int64_t kResetWaitUs = 5000;  // the most the writer waits for readers to leave the WAL
  // Core thread, outside any transaction: if the checkpointer asked for it, makes every
  // committed frame durable (fdatasync of `deferred_fd`, the descriptor of Writer::
  // DeferSyncs, when the writer's syncs are deferred; -1 if they are SQLite's own), then
  // runs a RESTART checkpoint from the writer's connection, waiting at most kResetWaitUs
  // for readers to leave the WAL. Cheap when nothing was asked.
  void ResetWalIfDue(int deferred_fd);
  // For /metrics: frames in the WAL after the writer's last commit, and the times a commit
  // started it over (both kept by the writer's WAL hook).
  uint64_t wal_frames() const { return wal_frames_.load(std::memory_order_relaxed); }
  uint64_t wal_resets() const { return wal_resets_.load(std::memory_order_relaxed); }

 private:
  std::string path_;
  std::thread checkpointer_;
  std::mutex ck_mu_;
  std::condition_variable ck_cv_;
  bool ck_stop_ = false;
  std::atomic<bool> reset_due_{false};
  std::atomic<bool> ck_wake_{false};  // the WAL passed its bound: a pass now, not in 200 ms
  int64_t reset_frames_ = 0;          // the bound in frames (set before either thread runs)
  static int OnWalCommit(void* store, sqlite3* db, const char* name, int frames);  // sqlite3_wal_hook
  std::atomic<uint64_t> wal_frames_{0};
  std::atomic<uint64_t> wal_resets_{0};
  std::unique_ptr<Writer> writer_;
  std::unique_ptr<ReaderPool> readers_;
};

// Schema version this build writes (PRAGMA user_version).
int SchemaVersion();
Status Migrate(Db& db);
// Brings a database from its PRAGMA user_version to `count` by running steps[version…count)
// in one transaction each; `what` names it in errors ("store").
Status ApplyMigrations(Db& db, const char* const* steps, int count, std::string_view what);

// deps <-> the text kept in the log table ("eu1=5,us1=3").
std::string DepsToText(const std::vector<std::pair<std::string, uint64_t>>& deps);
bool DepsFromText(std::string_view text, std::vector<std::pair<std::string, uint64_t>>* deps);

}  // namespace chatd::store
