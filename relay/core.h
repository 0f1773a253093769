// relay/core.h — the core thread: validation, HLC ids, signing, group commit, fan-out.
//
// Core owns all chat state and the store's writer connection; only its own thread touches
// them. Other threads hand it work with Post() (fire and forget) or Call() (wait for the
// result); both are thread-safe. Everything posted while the core was busy becomes ONE
// batch: one SQLite transaction, one commit. Only once the commit is durable are the batch's
// after-commit callbacks (acks, REST replies) run and its deliveries handed to the gateway,
// so nothing is acknowledged, shown or replicated before it is durable. The fdatasync that
// makes a commit durable runs on the chatd-sync thread while the core already works on the
// next batch (store/walvfs.h, Writer::DeferSyncs); that thread then finishes the batch.
//
// The Op* methods run on the core thread only (from posted functors); they validate,
// emit envelopes (Emit) and queue deliveries (Publish).
#pragma once

#include <event2/event.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/json.h"
#include "base/status.h"
#include "base/time.h"
#include "conf/config.h"
#include "crypto/device_keys.h"
#include "crypto/keys.h"
#include "relay/hlc.h"
#include "relay/recovery.h"
#include "relay/signer.h"
#include "relay/wsframe.h"
#include "store/store.h"

namespace chatd {

class Revocations;  // relay/auth.h
struct CallSignal;  // relay/calls.h

// Who is acting: an authenticated user on one device (0 = the relay itself).
struct Actor {
  uint64_t user_id = 0;
  uint64_t device_id = 0;
};

// One item for the gateway: a frame for one session, or for every session of some users.
struct Delivery {
  enum class Type : uint8_t { kSession, kUsers, kCloseUserDevice, kReplicate, kEphemeral };
  Type type = Type::kUsers;
  uint64_t session_id = 0;       // kSession: the target; kUsers: a session to skip (0 = none)
  std::shared_ptr<const std::vector<uint64_t>> users;  // kUsers
  Frame frame;
  uint64_t cursor = 0;           // log position of a durable event (0 for acks, ephemeral)
  uint64_t user_id = 0, device_id = 0;  // kCloseUserDevice
  std::shared_ptr<const crypto::Envelope> envelope;  // kReplicate: a newly applied envelope
  // kEphemeral: typing/presence/call signals for the peer links; `frame_json` is the client event,
  // scoped to the members of chat_id (if set) or to everyone sharing a chat with user_id.
  std::string frame_json;
  uint64_t chat_id = 0;
};

// Receives committed deliveries in commit order. Implemented by the gateway.
class DeliverySink {
 public:
  virtual ~DeliverySink() = default;
  virtual void Deliver(std::vector<Delivery>&& batch) = 0;
};

struct TokenGrant {  // a new device login
  uint64_t user_id = 0, device_id = 0;
  std::string refresh_token;
};

struct SendRequest {
  uint64_t chat_id = 0;
  std::string message_type, content, client_key;
  uint64_t reply_to = 0, file_id = 0;
  bool encrypted = false;  // end-to-end encrypted: content is opaque ciphertext, never indexed
  // forward_from: a copy of that message (its type, content and file) instead of content.
  uint64_t forward_chat_id = 0, forward_message_id = 0;
  uint64_t session_id = 0;  // the sending WebSocket session (skipped by new_message)
};

struct SendResult {
  store::MessageRow message;
  uint64_t cursor = 0;
  bool duplicate = false;  // an earlier message with the same client key
};

struct ContactRequestResult {
  store::ContactRequestRow request;
  bool existed = false;  // the same request was already pending
};

// A system-stream envelope (chat_id 0) by the acting user and device (relay/ops_social.cpp).
crypto::Envelope SystemEnvelope(crypto::Kind kind, const Actor& actor, std::string body);

// Whether (origin, seq) is in env's causal past: an earlier envelope of env's own origin,
// or one its origin had applied when it created env (env.deps).
bool InCausalPast(const crypto::Envelope& env, const std::string& origin, uint64_t seq);

// A stored blob to describe in a file_create envelope (relay/ops_files.cpp).
struct FileMeta {
  uint64_t chat_id = 0;
  std::string original_filename, mime_type, file_type, sha256;  // already sanitised
  uint64_t file_size = 0;
  uint64_t upload_id = 0;  // the resumable upload this completes (dropped with it); 0 = none
};

// A device's published keys, and what a claim hands out (relay/ops_keys.cpp).
struct PrekeyClaim {
  store::DeviceKeysRow device;
  std::optional<store::PrekeyRow> one_time;  // none: exhausted
};

struct ChatResult {
  store::ChatRow chat;
  bool existed = false;  // a direct chat that already existed
};

// Durations of chatd-sync's fdatasync rounds (what every acknowledgement waits for), as a
// Prometheus histogram: bucket i counts rounds that took at most kSyncBucketsS[i] seconds.
inline constexpr double kSyncBucketsS[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0};
inline constexpr size_t kSyncBuckets = sizeof kSyncBucketsS / sizeof kSyncBucketsS[0];

struct CoreStats {
  uint64_t batches = 0, commands = 0, envelopes = 0, commit_failures = 0;
  uint64_t expired = 0;  // envelopes of disappearing messages erased
  uint64_t last_seen_saved = 0;  // last-seen times of this relay's users stored (durable)
  uint64_t remote_applied = 0, remote_duplicates = 0, remote_buffered = 0, remote_invalid = 0,
           equivocations = 0, remote_dropped = 0;
  uint64_t sync_le[kSyncBuckets] = {};  // cumulative: rounds that took <= kSyncBucketsS[i]
  uint64_t syncs = 0;                   // every round (the +Inf bucket)
  double sync_seconds = 0;              // their total duration
};

class Core {
 public:
  Core(const conf::Config& cfg, store::Store& store, const crypto::KeyPair& key);
  ~Core();
  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;

  void SetSink(DeliverySink* sink) { sink_ = sink; }
  // Called (on chatd-sync or the core thread) each time the durable position advances, after
  // CommittedPos() shows it. Must be cheap and thread-safe. Set before Start().
  void SetOnDurable(std::function<void()> fn) { on_durable_ = std::move(fn); }
  // Loads the sequence, clock and vector (and the stored last-seen times of this relay's
  // users) from the store and starts the thread.
  Status Start();
  // Runs everything already posted, stores this relay's users still online as last seen
  // now, commits it, and stops the thread. Thread-safe; idempotent.
  void Stop();

  // Thread-safe. False once the core has stopped (the functor is dropped).
  bool Post(std::function<void()> fn);
  template <typename T>
  Result<T> Call(std::function<Result<T>()> fn, int timeout_ms = 15000);
  // Call for an operation that answers only a Status.
  Status CallStatus(std::function<Status()> fn, int timeout_ms = 15000) {
    auto r = Call<bool>(
        [fn = std::move(fn)]() -> Result<bool> {
          Status s = fn();
          if (!s.ok()) return s;
          return true;
        },
        timeout_ms);
    return r.ok() ? Status::Ok() : r.status();
  }

  // ---- core thread only ----
  bool IsCoreThread() const { return std::this_thread::get_id() == thread_.get_id(); }
  store::Writer& writer() { return store_.writer(); }
  uint64_t NewId() { return hlc_.Next(clock_->NowMs()); }
  // Completes and seals an envelope (origin, seq, deps, created_at; id if 0), applies it to
  // the views and reserves its log position (returned). It is signed and appended to the
  // log with the rest of the batch, just before the commit (SignPending).
  Result<uint64_t> Emit(crypto::Envelope& env);
  // Renders the client event for a just-emitted envelope and queues it for the chat's
  // members (plus `extra_user`), skipping `skip_session`.
  void Publish(const crypto::Envelope& env, uint64_t pos, uint64_t skip_session, uint64_t extra_user = 0);
  // Queues an already-rendered durable event for the chat's members.
  void PublishEvent(uint64_t chat_id, std::string_view event_json, uint64_t pos, uint64_t skip_session);
  // A user's public row (cached; invalidated by profile changes). nullptr if unknown.
  const store::UserRow* UserOf(uint64_t user_id);
  // Queues a delivery with the batch being built (sent once it is durable; dropped if it fails).
  void QueueDelivery(Delivery d) { pending_.push_back(std::move(d)); }
  // Runs once the batch is durable (ok) or has failed (nothing of it was saved), before the
  // batch's deliveries go to the gateway, on the core or the chatd-sync thread: it may only
  // use thread-safe things.
  void AfterCommit(std::function<void(bool ok)> cb) { after_commit_.push_back(std::move(cb)); }
  // Members of a chat (cached; invalidated by membership changes).
  std::shared_ptr<const std::vector<uint64_t>> MembersOf(uint64_t chat_id);
  void InvalidateMembers(uint64_t chat_id) { members_.erase(chat_id); }
  // A chat's disappearing-message timer in seconds, 0 = off (cached; invalidated by
  // chat_update envelopes, local or remote).
  int64_t TimerOf(uint64_t chat_id);
  void InvalidateTimer(uint64_t chat_id) { timers_.erase(chat_id); }

  // Operations (core thread; see relay/ops_*.cpp).
  Result<TokenGrant> OpRegister(const std::string& username, const std::string& email,
                                const std::string& password_hash, const std::string& first_name,
                                const std::string& last_name);
  Result<TokenGrant> OpNewDevice(uint64_t user_id);
  Result<TokenGrant> OpRotateRefresh(const std::string& token_hash);
  Status OpLogout(const Actor& actor);
  // Profile fields (a user_profile envelope) and privacy settings (`privacy`: the body of a
  // privacy envelope, checked by the caller; "" for none). Returns the updated user.
  Result<store::UserRow> OpUpdateProfile(const Actor& actor,
                                         const std::vector<std::pair<std::string, std::string>>& fields,
                                         const std::string& privacy);
  Result<ChatResult> OpCreateChat(const Actor& actor, const std::string& chat_type, const std::string& chat_name,
                                  std::vector<uint64_t> participants);
  Result<store::ChatRow> OpUpdateChat(const Actor& actor, uint64_t chat_id, const std::optional<std::string>& name,
                                      const std::optional<std::string>& description, std::optional<int64_t> disappearing);
  Result<store::ChatRow> OpAddMembers(const Actor& actor, uint64_t chat_id, const std::vector<uint64_t>& users);
  Status OpRemoveMember(const Actor& actor, uint64_t chat_id, uint64_t user_id);
  Result<store::ChatRow> OpSetRole(const Actor& actor, uint64_t chat_id, uint64_t user_id, const std::string& role);
  Status OpCheckMember(const Actor& actor, uint64_t chat_id);
  Result<SendResult> OpSend(const Actor& actor, const SendRequest& req);
  // Scheduled messages (relay/ops_scheduled.cpp): checked now as a send would be, stored
  // locally, sent at send_at by the core's timer (as OpSend, or marked failed).
  Result<store::ScheduledRow> OpSchedule(const Actor& actor, const SendRequest& req, int64_t send_at);
  Status OpCancelScheduled(const Actor& actor, uint64_t scheduled_id);
  Result<store::MessageRow> OpEdit(const Actor& actor, uint64_t chat_id, uint64_t message_id, const std::string& content);
  Status OpDelete(const Actor& actor, uint64_t chat_id, uint64_t message_id);
  // Delete for me: the message disappears from the user's own views (every device).
  Status OpHideForMe(const Actor& actor, uint64_t chat_id, uint64_t message_id);
  Status OpReact(const Actor& actor, uint64_t chat_id, uint64_t message_id, const std::string& reaction, bool add);
  Status OpReceipt(const Actor& actor, uint64_t chat_id, uint64_t up_to, bool read);
  // Files (relay/ops_files.cpp): a file_create envelope for a blob already stored (the
  // uploader must be a member of the chat); a resumable upload's local row; dropping rows
  // of expired uploads.
  Result<store::FileRow> OpCreateFile(const Actor& actor, const FileMeta& meta);
  Result<store::UploadRow> OpCreateUpload(const Actor& actor, store::UploadRow upload);
  Status OpDropUploads(const std::vector<uint64_t>& upload_ids);
  Status OpTyping(const Actor& actor, uint64_t chat_id, bool start, uint64_t skip_session);
  // presence_update to everyone who shares a chat with the user and to their contacts;
  // forwarded to peers.
  Status OpPresence(uint64_t user_id, const std::string& status, uint64_t skip_session);
  // What this relay knows of each user's presence now (GET /presence, which decides on a
  // read connection whom the caller may see, and asks the core only for these).
  struct PresenceNow {
    std::string status;
    int64_t last_seen = 0;  // now if not offline; 0 if never seen
  };
  std::vector<PresenceNow> PresenceOfUsers(const std::vector<uint64_t>& ids) const;
  // The 1-second tick asks whether presence has work (a snapshot to send, a peer's word
  // to lapse, last-seen times to store); PresenceTick does it in a batch.
  bool PresenceDue(int64_t now) const;
  void PresenceTick();
  void AnnouncePresence();  // presence_snapshot events of our online users to the peers
  // Call signalling (relay/ops_calls.cpp): a member's signal to the chat's members (or
  // to sig.to_user_id) and the sender's other sessions, skipping `skip_session`;
  // forwarded to peers. not_member, blocked (a direct chat, or the addressed member),
  // not_found (to_user_id is no member).
  Status OpCall(const Actor& actor, const CallSignal& sig, uint64_t skip_session);
  // An ephemeral event from a peer: deliver it locally (never stored).
  void OpRemoteEphemeral(uint64_t chat_id, uint64_t user_id, const std::string& event_json);

  // Blocks, contacts, reports (relay/ops_social.cpp).
  Result<store::BlockRow> OpBlock(const Actor& actor, uint64_t user_id, bool block);
  Result<ContactRequestResult> OpContactRequest(const Actor& actor, uint64_t user_id);
  // Accept (the recipient) or decline (the recipient; the sender: cancel) a pending request.
  Status OpDecideContact(const Actor& actor, uint64_t request_id, bool accept);
  Status OpRemoveContact(const Actor& actor, uint64_t user_id);
  Result<store::ReportRow> OpReport(const Actor& actor, uint64_t user_id, uint64_t message_id,
                                    const std::string& reason);
  Result<store::ReportRow> OpResolveReport(uint64_t report_id, const std::string& resolution);
  // 403 `blocked` if either user has blocked the other (as of everything applied here).
  Status CheckNotBlocked(uint64_t actor, uint64_t other);
  // The other user of a contact envelope (request, accept, decline, removal), who is
  // shown it too; 0 for other kinds.
  uint64_t SocialCounterpart(const crypto::Envelope& env);
  // The other member of a direct chat that user_id is in; 0 for a group (cached).
  uint64_t DirectPeerOf(uint64_t chat_id, uint64_t user_id);

  // Device keys (relay/ops_keys.cpp; docs/API.md "End-to-end encryption"). Publishing emits a
  // device_keys envelope when the identity key or the signed prekey changed (and only
  // then); one-time prekeys are stored here, and only at the user's home relay (409
  // home_relay_only elsewhere). Removing emits a device_keys {"removed"} envelope. A claim
  // (home relay only) hands out the lowest unclaimed one-time prekey, never twice: the
  // core is the single writer.
  Result<store::DeviceKeysRow> OpPublishKeys(const Actor& actor, const crypto::DeviceBundle& bundle);
  Status OpRemoveKeys(const Actor& actor);
  Result<PrekeyClaim> OpClaimPrekey(uint64_t user_id, uint64_t device_id);
  // A device_keys envelope (local or remote) was applied: drops one-time prekeys of a
  // replaced identity and tells the user and everyone who shares a chat with them or is
  // their contact (device_keys_changed), if it changed what they see. `before` is the
  // device's row before the envelope applied.
  void AfterDeviceKeys(const crypto::Envelope& env, const std::optional<store::DeviceKeysRow>& before, uint64_t pos);
  // device_keys_changed to the user, their chat partners and contacts.
  void QueueKeysChanged(uint64_t user_id, uint64_t device_id, const char* change, std::string_view identity_key,
                        int64_t updated_at, uint64_t pos);
  // An access change (logout, logout everywhere, disable) takes devices out of the key
  // directory: the live ones before it, and device_keys_changed "removed" for each that
  // is gone after it.
  std::vector<uint64_t> LiveKeyDevices(uint64_t user_id);
  void AnnounceKeysRemoved(uint64_t user_id, const std::vector<uint64_t>& before, uint64_t pos);

  // Access (relay/ops_users.cpp, relay/ops_admin.cpp): logout everywhere, disable/enable,
  // lifting a quarantine. A user_disable or session_revoke envelope, local or remote,
  // updates `revocations` (what token checks consult) after its batch commits and closes
  // the sessions it ends.
  void SetRevocations(Revocations* revocations) { revocations_ = revocations; }
  Status OpLogoutAll(const Actor& actor, int64_t token_issued_at_ms);
  Result<store::UserRow> OpSetDisabled(uint64_t user_id, bool disabled);
  Status OpLiftQuarantine(const std::string& origin);
  bool ValidAccessChange(const crypto::Envelope& env);  // for ValidRemote
  void ApplyAccessChange(const crypto::Envelope& env);  // after the envelope is appended
  // user_updated {user_id} to a user's chat partners and contacts after a profile or
  // privacy change (they fetch GET /users/{id}, which applies the privacy rules).
  void AnnounceUserUpdated(uint64_t user_id, uint64_t pos);
  // The user a user_disable or session_revoke envelope is about; 0 for other kinds.
  uint64_t AccessChangeUser(const crypto::Envelope& env);

  // Federation (relay/ops_remote.cpp). An envelope from a peer whose signature has been
  // verified by the caller: applied in causal order, buffered until its predecessors and
  // deps are here, a no-op if known, refused (and its origin quarantined) on equivocation.
  // One of our own origin (`from` sent it back) extends our own log after a restore or a
  // rollback (relay/recovery.h); a known one is a no-op, a different one an ALERT.
  void OpApplyRemote(crypto::Envelope env, const std::string& from = "");
  // When on, every applied envelope is also handed to the gateway for the peer links.
  void SetReplicate(bool on) { replicate_ = on; }
  std::vector<std::pair<std::string, uint64_t>> VectorSnapshot();  // thread-safe copy
  std::vector<std::string> Quarantined();                           // thread-safe copy

  // Recovery of our own log after a restore or a rollback (relay/recovery.h). While it
  // lasts, Emit refuses with 503 `unavailable` (and a retry_after) and /readyz says why.
  // Thread-safe: `peer` reported (vector or ack) holding our own origin up to `seq`; true
  // when that is beyond our own log (the recovery starts or extends).
  bool NotePeerOwnSeq(const std::string& peer, uint64_t seq);
  bool Recovering() const { return own_log_.Holding(); }              // thread-safe
  OwnLog::Snapshot RecoveryStatus() const { return own_log_.Get(); }  // thread-safe
  void SetRecoveryPeers(const std::vector<conf::Peer>& peers);        // thread-safe (reload)
  // Operator (admin API, core thread): ends a restored store's wait for its peers. False if
  // it was not waiting. A peer known to hold more of our own log still holds us back.
  Result<bool> OpReleaseRecovery();

  CoreStats stats() const;
  const conf::Config& config() const { return cfg_; }
  // The newest durable log position (the client cursor). Thread-safe.
  uint64_t CommittedPos() const { return committed_pos_.load(std::memory_order_acquire); }
  // Signs with the relay key (federation handshakes). Thread-safe.
  std::array<uint8_t, 64> Sign(std::string_view msg) const {
    return key_.Sign({reinterpret_cast<const uint8_t*>(msg.data()), msg.size()});
  }

 private:
  static void OnWake(evutil_socket_t, short, void* arg);
  // Disappearing and scheduled messages: once a second (core thread, between batches)
  // checks the store for text that is due to be erased, or messages due to be sent, and if
  // any, posts a batch that does it (ExpireDue, SendScheduled).
  static void OnExpiryTick(evutil_socket_t, short, void* arg);
  void ExpireDue();
  void SendScheduled();            // the due scheduled messages (a batch's command)
  void CheckScheduled();           // from the timer: posts SendScheduled if one is due
  bool scheduled_posted_ = false;  // a SendScheduled batch is queued
  // The checks every send makes before its envelope: the request's own fields and the
  // sender's membership (CheckSendBasics); then blocks, the file, the reply and the
  // forwarded source, which give the type, content and file to send (ResolveSend).
  struct ResolvedSend {
    std::string message_type, content;
    uint64_t file_id = 0;
  };
  Status CheckSendBasics(const Actor& actor, const SendRequest& req);
  Result<ResolvedSend> ResolveSend(const Actor& actor, const SendRequest& req, int64_t now);
  void RunBatch();
  // Collects the batch's emitted envelopes, signed (relay/signer.h), and appends them to the
  // log, in order, at their reserved positions. Runs before the commit and before any
  // remote envelope is appended (so log positions stay in order).
  void SignPending();
  Status LoadState();
  // A batch after its COMMIT, waiting to be durable; then Finish publishes it: the durable
  // position and vector, the callbacks, the deliveries. Batches finish in commit order.
  struct Committed {
    bool ok = false;
    uint64_t pos = 0;
    std::vector<std::function<void(bool)>> callbacks;
    std::vector<Delivery> deliveries;
    std::vector<std::pair<std::string, uint64_t>> vector;
  };
  void Finish(Committed& c);
  void RunSyncer();    // the chatd-sync thread: fdatasync, then Finish, in rounds
  void RecordSync(double seconds);  // one fdatasync round took this long (stats_)
  void DrainSyncer();  // core thread: waits until every committed batch has finished
  Result<std::string> RoleOrNotMember(uint64_t chat_id, uint64_t user_id);

  const conf::Config& cfg_;
  store::Store& store_;
  const crypto::KeyPair& key_;
  const Clock* clock_ = &SystemClock::Get();
  DeliverySink* sink_ = nullptr;
  std::function<void()> on_durable_;

  std::unique_ptr<event_base, void (*)(event_base*)> base_{nullptr, event_base_free};
  std::unique_ptr<event, void (*)(event*)> wake_{nullptr, event_free};
  std::unique_ptr<event, void (*)(event*)> expiry_tick_{nullptr, event_free};
  bool expiry_posted_ = false;  // an ExpireDue batch is queued
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::function<void()>> inbox_;  // guarded by mu_
  bool stopping_ = false;                     // guarded by mu_
  bool stopped_ = false;                      // guarded by mu_
  bool closed_ = false;                       // guarded by mu_: no more posts

  // Core-thread state.
  Hlc hlc_;
  uint64_t seq_ = 0;                          // last seq this relay emitted
  std::vector<std::pair<std::string, uint64_t>> vector_;  // applied per origin (sorted)
  bool batch_failed_ = false;
  std::unique_ptr<BatchSigner> signer_;
  std::vector<uint64_t> unsigned_pos_;  // reserved log positions of the envelopes in signer_
  std::vector<Delivery> pending_;
  std::vector<std::function<void(bool)>> after_commit_;
  // Durability pipeline (sync_fd_ < 0: COMMIT itself syncs, and the core finishes inline).
  int sync_fd_ = -1;
  std::thread syncer_;
  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  std::deque<Committed> to_sync_;  // guarded by sync_mu_
  bool syncing_ = false;           // guarded by sync_mu_: a round is in progress
  bool sync_stop_ = false;         // guarded by sync_mu_
  std::unordered_map<uint64_t, std::shared_ptr<const std::vector<uint64_t>>> members_;
  std::unordered_map<uint64_t, store::UserRow> users_;
  std::unordered_map<uint64_t, int64_t> timers_;
  std::unordered_map<uint64_t, std::pair<uint64_t, uint64_t>> direct_pairs_;  // chat -> its two users, or 0s
  // Federation state (core thread; the snapshots below are for other threads).
  std::atomic<bool> replicate_{false};
  std::atomic<uint64_t> committed_pos_{0};
  uint64_t batch_max_pos_ = 0;
  std::map<std::string, std::map<uint64_t, crypto::Envelope>> remote_buffer_;
  size_t remote_buffered_ = 0;
  std::set<std::string> quarantined_;
  mutable std::mutex snapshot_mu_;
  std::vector<std::pair<std::string, uint64_t>> vector_snapshot_;  // guarded by snapshot_mu_
  std::vector<std::string> quarantined_snapshot_;                 // guarded by snapshot_mu_
  bool AppliedDeps(const crypto::Envelope& env) const;
  uint64_t AppliedOf(const std::string& origin) const;
  bool ValidRemote(const crypto::Envelope& env);
  // A post's forward and file references, as of its causal past (relay/ops_remote.cpp).
  bool ValidPostRefs(const crypto::Envelope& env);
  bool ValidSocial(const crypto::Envelope& env);  // blocks and contacts (ops_social.cpp)
  bool ValidDeviceKeys(const crypto::Envelope& env);  // ops_keys.cpp
  // Whether blocker had blocked `blocked` as of env's causal past.
  bool BlockedAsOf(const crypto::Envelope& env, uint64_t blocker, uint64_t blocked);
  // The author's role in chat_id (0: env's own chat) as of env's causal past; "" if none.
  std::string RoleAsOf(const crypto::Envelope& env, uint64_t chat_id = 0);
  void Quarantine(const std::string& origin);
  void ApplyBuffered(const std::string& origin);
  // Own-log recovery (relay/ops_remote.cpp). CheckRecovery runs in a batch: it ends the
  // restored wait when it is over (clearing the store's mark) and logs the recovery's end.
  void StartRecovery();  // Start(): reads the store's mark, logs a restored start
  Status RecoveringStatus() const;
  void CheckRecovery();
  OwnLog own_log_;
  bool recovery_active_ = false;  // core thread: logged as started, not yet as done
  int64_t recovery_since_ms_ = 0;
  uint64_t recovery_from_seq_ = 0, recovered_ = 0;
  std::map<std::string, uint64_t> recovered_from_;  // peer -> own envelopes it sent back
  void Replicate(crypto::Envelope env);  // moved into the delivery
  // forbidden `privacy_restricted` unless `u`'s privacy lets `actor` add them to a group.
  Status CheckMayAddToGroup(uint64_t actor, const store::UserRow& u);
  // Who may see a user's presence, privacy aside: everyone sharing a chat with them, and
  // their contacts. (Also the audience of device_keys_changed.)
  std::shared_ptr<const std::vector<uint64_t>> PresenceAudienceOf(uint64_t user_id);
  // Presence (relay/presence.cpp): what each relay last said of a user, and when.
  struct PresenceSeen {
    std::string status;  // online, away, busy, offline
    int64_t since = 0;   // when it became so (ms since the epoch)
    int64_t heard = 0;   // when the relay last said so
  };
  PresenceNow PresenceOf(uint64_t user_id) const;
  int64_t PresenceTtlMs() const;
  // The audience as the user's privacy setting last_seen narrows it.
  std::shared_ptr<const std::vector<uint64_t>> PresenceWatchers(uint64_t user_id);
  // What `relay` says of the user now (`since`: when, if not now, which also leaves the
  // time it was last heard); a change of the user's presence goes to their watchers.
  void SetPresence(uint64_t user_id, const std::string& relay, const std::string& status, uint64_t skip_session,
                   int64_t since = 0);
  void RemotePresence(uint64_t user_id, const json::Value& event);
  void RemotePresenceSnapshot(const json::Value& event);
  std::unordered_map<uint64_t, std::map<std::string, PresenceSeen>> presence_;
  int64_t presence_beat_at_ = 0;   // the next presence_snapshot
  int64_t presence_lapse_at_ = 0;  // the earliest a peer's word may lapse
  bool presence_posted_ = false;   // a PresenceTick is queued
  // This relay's users that are not offline here, with their status.
  std::vector<std::pair<uint64_t, std::string>> LocalOnline() const;
  // Last-seen times of this relay's users (the store's local table last_seen; a peer's
  // users are not stored). Start loads the newest as offline entries of this relay. A
  // user's last session closing, every presence interval for those online, and Stop for
  // those still online mark times due (user -> ms); SaveLastSeen writes them in the
  // current batch, a bounded chunk per batch.
  void LoadLastSeen();
  void NoteOnlineSeen(int64_t now);
  void SaveLastSeen();
  std::unordered_map<uint64_t, int64_t> last_seen_due_;
  void ForwardEphemeral(uint64_t chat_id, uint64_t user_id, std::string event_json);
  // Queues an ephemeral event (no cursor) for every session of `users` but skip_session.
  void DeliverEphemeral(std::shared_ptr<const std::vector<uint64_t>> users, uint64_t skip_session,
                        std::string_view event_json);
  // The chat's members, which must include user_id (not_member, or not_found: no chat).
  Result<std::shared_ptr<const std::vector<uint64_t>>> MembersIncluding(uint64_t chat_id, uint64_t user_id);
  // Who gets a call signal from `from` (relay/ops_calls.cpp), after the block and
  // to_user_id checks; RemoteCall delivers a peer's signal after the same checks.
  Result<std::shared_ptr<const std::vector<uint64_t>>> CallAudience(
      const CallSignal& sig, uint64_t from, const std::shared_ptr<const std::vector<uint64_t>>& members);
  void RemoteCall(const CallSignal& sig, uint64_t user_id, uint64_t device_id);
  mutable std::mutex stats_mu_;
  CoreStats stats_;
  Revocations* revocations_ = nullptr;  // set before Start
};

template <typename T>
Result<T> Core::Call(std::function<Result<T>()> fn, int timeout_ms) {
  // state: 0 queued, 1 taken by the core (its result will come), 2 abandoned by the caller.
  // A caller gives up only on a request the core has not started, so "overloaded" always
  // means nothing was done; once started, the caller waits for the commit's verdict.
  auto state = std::make_shared<std::atomic<int>>(0);
  auto promise = std::make_shared<std::promise<Result<T>>>();
  auto future = promise->get_future();
  bool posted = Post([this, state, promise, fn = std::move(fn)]() {
    int queued = 0;
    if (!state->compare_exchange_strong(queued, 1)) return;  // abandoned: do nothing
    auto result = std::make_shared<Result<T>>(fn());
    if (!result->ok()) {
      promise->set_value(std::move(*result));
      return;
    }
    AfterCommit([promise, result](bool ok) {
      if (ok) promise->set_value(std::move(*result));
      else promise->set_value(Result<T>(Internal("the store could not commit; nothing was saved")));
    });
  });
  if (!posted) return Status(Code::kUnavailable, "the relay is shutting down");
  if (future.wait_for(std::chrono::milliseconds(timeout_ms)) != std::future_status::ready) {
    int queued = 0;
    if (state->compare_exchange_strong(queued, 2)) {
      return Status(Code::kUnavailable, "the relay is overloaded; nothing was done; try again");
    }
    // Taken while we waited: its batch commits (or fails) shortly; report what happened.
  }
  return future.get();
}

}  // namespace chatd
