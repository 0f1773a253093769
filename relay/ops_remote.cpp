// Federation on the core thread: applying peers' envelopes in causal order.
//
// Apply rule (DESIGN.md §4): envelope (O, s) is applied when applied[O] == s-1 and every
// dep is applied; otherwise it waits in a bounded buffer (a peer link re-sends what was
// dropped when its acks show the gap). A known (O, s) is a no-op when its header hash
// matches and equivocation when it does not: the origin is quarantined and an alert logged.
// Every signed envelope of an origin goes into the log so all logs stay identical; one
// that is not valid against its causal past (a post by a non-member, say) is kept in the
// log but changes no view, on every relay alike. Envelopes of our own origin come back
// this way after a restore or a rollback (relay/recovery.h, relay/ops_recovery.cpp).
#include <algorithm>

#include "base/json.h"
#include "base/log.h"
#include "crypto/bytes.h"
#include "relay/core.h"
#include "store/views.h"

namespace chatd {

namespace {

constexpr size_t kMaxBuffered = 200000;

bool ChatScoped(crypto::Kind k) {
  switch (k) {
    case crypto::Kind::kChatUpdate:
    case crypto::Kind::kMemberAdd:
    case crypto::Kind::kMemberRemove:
    case crypto::Kind::kMemberRole:
    case crypto::Kind::kMsgPost:
    case crypto::Kind::kMsgEdit:
    case crypto::Kind::kMsgDelete:
    case crypto::Kind::kReaction:
    case crypto::Kind::kReceipt:
    case crypto::Kind::kFileCreate:
      return true;
    default:
      return false;
  }
}

}  // namespace

uint64_t Core::AppliedOf(const std::string& origin) const {
  auto it = std::lower_bound(vector_.begin(), vector_.end(), origin,
                             [](const auto& p, const std::string& o) { return p.first < o; });
  return (it != vector_.end() && it->first == origin) ? it->second : 0;
}

bool Core::AppliedDeps(const crypto::Envelope& env) const {
  for (const auto& [origin, seq] : env.deps) {
    if (origin == env.origin) continue;  // its own predecessor is the seq rule
    if (AppliedOf(origin) < seq) return false;
  }
  return true;
}

namespace {

constexpr int64_t kEditWindowMs = 5 * 60 * 1000;

}  // namespace

// The author's role in the chat as of env's causal past, or "" if not a member then.
std::string Core::RoleAsOf(const crypto::Envelope& env, uint64_t chat_id) {
  auto events = store_.writer().MemberEvents(chat_id ? chat_id : env.chat_id, env.author);
  if (!events.ok()) return {};
  std::string role;
  for (const auto& e : *events) {  // newest first
    if (!InCausalPast(env, e.origin, e.seq)) continue;
    if (e.op == "role") {
      if (role.empty()) role = e.role;
      continue;
    }
    if (e.op != "add") return {};
    return role.empty() ? e.role : role;
  }
  return {};
}

bool Core::ValidRemote(const crypto::Envelope& env) {
  auto& w = store_.writer();
  if (env.kind == crypto::Kind::kUserCreate) return env.author == env.id && env.chat_id == 0;
  if (env.kind == crypto::Kind::kChatCreate) {
    if (env.chat_id != env.id) return false;
    auto u = w.UserById(env.author);
    return u.ok() && u.value().has_value();
  }
  if (env.kind == crypto::Kind::kPrivacy) {  // a known user's own settings, all of them valid
    json::Doc body;
    if (env.chat_id != 0 || !json::Parse(env.body, &body).ok() || !store::ValidPrivacyBody(body)) return false;
    auto u = w.UserById(env.author);
    return u.ok() && u.value().has_value();
  }
  if (env.kind == crypto::Kind::kUserDisable || env.kind == crypto::Kind::kSessionRevoke) {
    return ValidAccessChange(env);  // relay/ops_users.cpp
  }
  switch (env.kind) {
    case crypto::Kind::kBlock:
    case crypto::Kind::kUnblock:
    case crypto::Kind::kContactRequest:
    case crypto::Kind::kContactAccept:
    case crypto::Kind::kContactRemove:
    case crypto::Kind::kHideForMe:
      return ValidSocial(env);  // relay/ops_social.cpp
    case crypto::Kind::kDeviceKeys:
      return ValidDeviceKeys(env);  // relay/ops_keys.cpp
    default:
      break;
  }
  if (!ChatScoped(env.kind)) return true;
  std::string role = RoleAsOf(env);
  if (role.empty()) return false;
  if (env.kind == crypto::Kind::kMsgPost) {
    // No direct message between two users one of whom had blocked the other.
    if (uint64_t peer = DirectPeerOf(env.chat_id, env.author)) {
      if (BlockedAsOf(env, peer, env.author) || BlockedAsOf(env, env.author, peer)) return false;
    }
    if (!ValidPostRefs(env)) return false;
  }
  if (env.kind == crypto::Kind::kMsgEdit || env.kind == crypto::Kind::kMsgDelete) {
    json::Doc body;
    if (!json::Parse(env.body, &body).ok()) return false;
    auto mid = json::GetId(body, "message_id");
    if (!mid.ok()) return false;
    // Not Message(), which hides a message past its timer: validity must not depend on
    // the time it is checked. A post erased before it got here (disappeared, or deleted
    // for everyone) is still known by its header facts, as on the relays that had it whole.
    auto m = w.MessageFacts(*mid);
    if (!m.ok() || !m.value() || m.value()->chat_id != env.chat_id) return false;
    if (env.kind == crypto::Kind::kMsgEdit) {
      return m.value()->sender_id == env.author && env.created_at - m.value()->created_at <= kEditWindowMs;
    }
    return m.value()->sender_id == env.author || role == "admin";
  }
  return true;
}

bool Core::ValidPostRefs(const crypto::Envelope& env) {
  const bool forward = env.body.find("\"forwarded_from\"") != std::string::npos;
  const bool file = env.body.find("\"file_id\"") != std::string::npos;
  if (!forward && !file) return true;
  json::Doc body;
  if (!json::Parse(env.body, &body).ok() || !body.IsObject()) return false;
  // A forwarded copy: its author could read the source chat then.
  uint64_t src_chat = 0, src_message = 0;
  auto it = body.FindMember("forwarded_from");
  if (it != body.MemberEnd()) {
    if (!it->value.IsObject()) return false;
    auto c = json::GetId(it->value, "chat_id");
    auto m = json::GetId(it->value, "message_id");
    if (!c.ok() || !m.ok() || RoleAsOf(env, *c).empty()) return false;
    src_chat = *c;
    src_message = *m;
  }
  // A file it shows: one uploaded to this chat, or (a forwarded copy) the file its source
  // message shows. A source deleted or erased since cannot be compared any more, so it
  // is accepted, alike on every relay whether or not the delete arrived first.
  auto fid = json::GetOptId(body, "file_id");
  if (!fid.ok()) return false;
  const uint64_t file_id = fid.value().value_or(0);
  if (!file_id) return true;
  auto& w = store_.writer();
  auto f = w.File(file_id);
  if (!f.ok() || !f.value() || !InCausalPast(env, f.value()->origin, f.value()->seq)) return false;
  if (f.value()->chat_id == env.chat_id) return true;
  if (!src_message) return false;
  auto src = w.MessageFacts(src_message);
  if (!src.ok() || !src.value() || src.value()->chat_id != src_chat) return false;
  return src.value()->deleted || src.value()->file_id == file_id;
}

void Core::Replicate(crypto::Envelope env) {
  if (!replicate_) return;
  Delivery d;
  d.type = Delivery::Type::kReplicate;
  d.envelope = std::make_shared<const crypto::Envelope>(std::move(env));
  pending_.push_back(std::move(d));
}

void Core::Quarantine(const std::string& origin) {
  quarantined_.insert(origin);
  std::string list;
  for (const auto& q : quarantined_) list += (list.empty() ? "" : ",") + q;
  (void)store_.writer().SetMeta("quarantined", list);  // kept across restarts
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  quarantined_snapshot_.assign(quarantined_.begin(), quarantined_.end());
}

void Core::OpApplyRemote(crypto::Envelope env, const std::string& from) {
  // Our own origin: a peer holds it, so we signed it. A known one is a duplicate (gossip); a
  // new one extends our own log after a restore or a rollback (relay/recovery.h) and is
  // applied like any other, so views, indexes and cursors come out as if never lost.
  const bool own = env.origin == cfg_.relay_name;
  if (!own && quarantined_.count(env.origin)) return;
  uint64_t applied = AppliedOf(env.origin);
  if (env.seq <= applied) {
    auto hh = crypto::HeaderHash(env);
    std::string hash(reinterpret_cast<const char*>(hh.data()), hh.size());
    auto stored = store_.writer().HeaderHashAt(env.origin, env.seq);
    if (stored.ok() && stored.value() && *stored.value() != hash && own) {
      // We signed a different envelope with this seq after a rollback, before any peer
      // told us it had the original: our log and the federation's have diverged.
      log::Error(
          "ALERT: this relay's own log diverged from a peer's: it signed a different envelope with this seq "
          "(a rollback, and originating before the peers were heard); its peers quarantine it",
          {{"peer", from}, {"seq", env.seq}});
      std::lock_guard<std::mutex> lock(stats_mu_);
      stats_.equivocations++;
      return;
    }
    if (stored.ok() && stored.value() && *stored.value() != hash) {
      Quarantine(env.origin);
      log::Error("ALERT: equivocation: origin signed two different envelopes with one seq; origin quarantined",
                 {{"origin", env.origin}, {"seq", env.seq}});
      std::lock_guard<std::mutex> lock(stats_mu_);
      stats_.equivocations++;
      return;
    }
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_.remote_duplicates++;
    return;
  }
  if (own) {
    // Not originating until our log reaches it (Emit refuses meanwhile).
    if (own_log_.NoteOwnEnvelope(from, env.seq)) {
      log::Warn("recovery: a peer sent back an envelope of this relay's own origin beyond its log",
                {{"peer", from}, {"from_seq", seq_ + 1}, {"to_seq", env.seq}});
    }
  }
  auto& buf = remote_buffer_[env.origin];
  auto existing = buf.find(env.seq);
  if (existing != buf.end()) {
    if (own && crypto::HeaderHash(existing->second) != crypto::HeaderHash(env)) {
      log::Error("ALERT: two peers sent back different envelopes of this relay's own origin with one seq",
                 {{"peer", from}, {"seq", env.seq}});
      return;
    }
    if (crypto::HeaderHash(existing->second) != crypto::HeaderHash(env)) {
      Quarantine(env.origin);
      remote_buffered_ -= std::min(remote_buffered_, buf.size());
      buf.clear();
      {
        std::lock_guard<std::mutex> lock(stats_mu_);
        stats_.remote_buffered = remote_buffered_;
      }
      log::Error("ALERT: equivocation: two different envelopes for one seq; origin quarantined",
                 {{"origin", env.origin}, {"seq", env.seq}});
      std::lock_guard<std::mutex> lock(stats_mu_);
      stats_.equivocations++;
    }
    return;
  }
  if (remote_buffered_ >= kMaxBuffered) {
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_.remote_dropped++;  // the link re-sends it when our acks show the gap
    return;
  }
  std::string origin = env.origin;
  buf.emplace(env.seq, std::move(env));
  ++remote_buffered_;
  if (own) recovered_from_[from]++;
  ApplyBuffered(origin);
  if (recovery_active_ || own_log_.Holding()) CheckRecovery();
}

void Core::ApplyBuffered(const std::string& first_origin) {
  // Applying one origin's envelope can satisfy the deps of another origin's: sweep until
  // nothing moves.
  bool progress = true;
  std::string hint = first_origin;
  while (progress) {
    progress = false;
    for (auto it = remote_buffer_.begin(); it != remote_buffer_.end();) {
      auto& [origin, buf] = *it;
      while (!buf.empty()) {
        auto head = buf.begin();
        uint64_t applied = AppliedOf(origin);
        if (head->first <= applied) {  // raced with a duplicate; drop it
          buf.erase(head);
          --remote_buffered_;
          continue;
        }
        if (head->first != applied + 1 || !AppliedDeps(head->second)) break;
        crypto::Envelope env = std::move(head->second);
        buf.erase(head);
        --remote_buffered_;
        bool valid = ValidRemote(env);
        auto& w = store_.writer();
        std::optional<store::DeviceKeysRow> keys_before;  // what device_keys_changed compares with
        if (valid && env.kind == crypto::Kind::kDeviceKeys) {
          auto kb = w.DeviceKeys(env.author, json::ParseId(env.device).value_or(0), false);
          if (kb.ok()) keys_before = std::move(kb.value());
        }
        const uint64_t access_user = valid ? AccessChangeUser(env) : 0;  // logout, disable
        const std::vector<uint64_t> live_before = LiveKeyDevices(access_user);
        SignPending();  // our own envelopes of this batch first: log positions stay in order
        (void)w.Savepoint();
        auto pos = w.Append(env, valid, 0, valid);
        if (!pos.ok() && valid) {
          // Signed but not applicable to the views (a malformed body): keep it in the log
          // only, like any invalid envelope, rather than fail the whole batch.
          (void)w.RollbackToSavepoint();
          (void)w.Savepoint();
          valid = false;
          pos = w.Append(env, false, 0, false);
        }
        if (pos.ok())
          (void)w.Release();
        else (void)w.RollbackToSavepoint();
        if (!pos.ok()) {
          batch_failed_ = true;
          log::Error("federation: cannot append a remote envelope", {{"origin", origin}, {"error", pos.status().message()}});
          return;
        }
        hlc_.Observe(env.id, clock_->NowMs());
        batch_max_pos_ = std::max(batch_max_pos_, *pos);
        auto vit = std::lower_bound(vector_.begin(), vector_.end(), origin,
                                    [](const auto& p, const std::string& o) { return p.first < o; });
        if (vit != vector_.end() && vit->first == origin) vit->second = env.seq;
        else vector_.insert(vit, {origin, env.seq});
        if (origin == cfg_.relay_name) {  // our own, taken back from a peer
          seq_ = env.seq;
          own_log_.SetOwn(seq_);
          ++recovered_;
        }
        if (valid) {
          if (env.kind == crypto::Kind::kChatCreate || env.kind == crypto::Kind::kMemberAdd ||
              env.kind == crypto::Kind::kMemberRemove) {
            InvalidateMembers(env.chat_id);
          }
          if (env.kind == crypto::Kind::kUserProfile || env.kind == crypto::Kind::kPrivacy) {
            users_.erase(env.author);
            AnnounceUserUpdated(env.author, *pos);
          }
          if (env.kind == crypto::Kind::kChatUpdate) InvalidateTimer(env.chat_id);
          ApplyAccessChange(env);  // user_disable, session_revoke: tokens, sessions
          if (env.kind == crypto::Kind::kDeviceKeys) AfterDeviceKeys(env, keys_before, *pos);
          if (access_user) AnnounceKeysRemoved(access_user, live_before, *pos);
          uint64_t extra = 0;
          if (env.kind == crypto::Kind::kMemberRemove) {
            json::Doc body;
            if (json::Parse(env.body, &body).ok()) extra = json::GetId(body, "user_id").ok() ? *json::GetId(body, "user_id") : 0;
          } else if (env.chat_id == 0) {
            extra = SocialCounterpart(env);  // the other user of a contact request or decision
          }
          Publish(env, *pos, 0, extra);
        }
        Replicate(std::move(env));  // last use of env
        progress = true;
        std::lock_guard<std::mutex> lock(stats_mu_);
        stats_.remote_applied++;
        if (!valid) stats_.remote_invalid++;
      }
      it = buf.empty() ? remote_buffer_.erase(it) : std::next(it);
    }
  }
  std::lock_guard<std::mutex> lock(stats_mu_);
  stats_.remote_buffered = remote_buffered_;
}

std::vector<std::pair<std::string, uint64_t>> Core::VectorSnapshot() {
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  return vector_snapshot_;
}

std::vector<std::string> Core::Quarantined() {
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  return quarantined_snapshot_;
}

}  // namespace chatd
