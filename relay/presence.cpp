// Presence on the core thread: who is online, away or busy, as each relay last said, and
// who may see it (the user's privacy setting `last_seen`).
//
// Each relay is the authority on its own sessions: the gateway reports a user's first
// session (online) and last one closing (offline), and the client may say away or busy.
// Changes are forwarded to the peers as ephemeral presence_update events naming the
// relay, and every gateway.presence_interval each relay re-announces its online users in
// presence_snapshot events. A user shows online if some relay says so; a peer's word
// lapses 2.5 intervals after it was last heard (the relay stopped, or the link is down).
// Presence is not replicated; only when this relay's own users were last seen here is
// stored, in the local table last_seen, so that last_seen survives a restart: written
// when a user's last session closes, for the users still online every interval (a crash
// loses at most one interval) and at a clean stop, a batch at a time.
#include <algorithm>

#include "base/json.h"
#include "base/log.h"
#include "relay/core.h"

namespace chatd {

namespace {

constexpr size_t kSnapshotChunk = 500;        // users per presence_snapshot event
constexpr size_t kMaxPresenceUsers = 200000;  // beyond it, offline users are forgotten
// Stored last-seen times loaded at start, newest first: half the bound, so that users
// coming online do not soon make SetPresence forget them all.
constexpr int kMaxLoadedLastSeen = static_cast<int>(kMaxPresenceUsers / 2);
constexpr size_t kLastSeenChunk = 10000;  // last-seen times written per batch

bool ValidStatus(std::string_view s) { return s == "online" || s == "away" || s == "busy" || s == "offline"; }

// presence_update: to clients (relay ""), or to the peers naming the relay that says so.
std::string PresenceEvent(uint64_t user_id, std::string_view status, int64_t last_seen, std::string_view relay) {
  json::JsonWriter w;
  w.BeginObject().Key("type").Str("presence_update").Key("user_id").Id(user_id).Key("status").Str(status);
  w.Key("last_seen").Time(last_seen);
  if (!relay.empty()) w.Key("relay").Str(relay);
  w.EndObject();
  return w.Take();
}

bool ValidRelayName(std::string_view s) {
  if (s.empty() || s.size() > crypto::kMaxOriginLen) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

}  // namespace

int64_t Core::PresenceTtlMs() const { return static_cast<int64_t>(cfg_.presence_interval_s) * 2500; }

Core::PresenceNow Core::PresenceOf(uint64_t user_id) const {
  PresenceNow out{"offline", 0};
  auto it = presence_.find(user_id);
  if (it == presence_.end()) return out;
  int64_t newest_on = -1;
  for (const auto& [relay, seen] : it->second) {
    if (seen.status != "offline") {
      if (seen.since > newest_on) {
        newest_on = seen.since;
        out.status = seen.status;
      }
    } else {
      out.last_seen = std::max(out.last_seen, seen.since);
    }
  }
  if (newest_on >= 0) out.last_seen = clock_->NowMs();
  return out;
}

std::shared_ptr<const std::vector<uint64_t>> Core::PresenceWatchers(uint64_t user_id) {
  const store::UserRow* u = UserOf(user_id);
  const std::string everyone = "everyone";
  const std::string& who = u ? u->privacy.last_seen : everyone;
  if (who == "nobody") return std::make_shared<const std::vector<uint64_t>>();
  auto all = PresenceAudienceOf(user_id);
  if (who == "everyone") return all;
  auto list = std::make_shared<std::vector<uint64_t>>();
  auto contacts = store_.writer().ContactsOf(user_id);
  if (!contacts.ok()) return list;
  for (const auto& c : *contacts) list->push_back(c.user_id);
  return list;
}

void Core::SetPresence(uint64_t user_id, const std::string& relay, const std::string& status, uint64_t skip_session,
                       int64_t since) {
  int64_t now = clock_->NowMs();
  PresenceNow before = PresenceOf(user_id);
  if (presence_.size() >= kMaxPresenceUsers && !presence_.count(user_id)) {
    for (auto it = presence_.begin(); it != presence_.end();) {  // forget who is offline everywhere
      bool online =
          std::any_of(it->second.begin(), it->second.end(), [](const auto& e) { return e.second.status != "offline"; });
      it = online ? std::next(it) : presence_.erase(it);
    }
  }
  PresenceSeen& seen = presence_[user_id][relay];
  if (seen.status != status) {
    seen.status = status;
    seen.since = since ? since : now;
  }
  if (!since) seen.heard = now;
  if (relay != cfg_.relay_name && status != "offline") {
    presence_lapse_at_ = std::min(presence_lapse_at_, seen.heard + PresenceTtlMs() + 1);
  }
  PresenceNow after = PresenceOf(user_id);
  if (after.status == before.status) return;
  DeliverEphemeral(PresenceWatchers(user_id), skip_session, PresenceEvent(user_id, after.status, after.last_seen, ""));
}

Status Core::OpPresence(uint64_t user_id, const std::string& status, uint64_t skip_session) {
  SetPresence(user_id, cfg_.relay_name, status, skip_session);
  if (status == "offline") last_seen_due_[user_id] = presence_[user_id][cfg_.relay_name].since;
  ForwardEphemeral(0, user_id, PresenceEvent(user_id, status, clock_->NowMs(), cfg_.relay_name));
  return Status::Ok();
}

void Core::RemotePresence(uint64_t user_id, const json::Value& ev) {
  auto status = json::GetString(ev, "status", 16);
  // A peer older than presence_snapshot names no relay: its word counts as one unnamed relay's.
  auto relay = json::GetOptString(ev, "relay", crypto::kMaxOriginLen);
  if (!status.ok() || !ValidStatus(*status) || !relay.ok()) return;
  std::string from = relay.value() ? std::string(**relay) : std::string("-");
  if (from == cfg_.relay_name || (relay.value() && !ValidRelayName(from))) return;
  SetPresence(user_id, from, std::string(*status), 0);
}

void Core::RemotePresenceSnapshot(const json::Value& ev) {
  auto relay = json::GetString(ev, "relay", crypto::kMaxOriginLen);
  auto users = ev.FindMember("users");
  if (!relay.ok() || !ValidRelayName(*relay) || *relay == cfg_.relay_name || users == ev.MemberEnd() ||
      !users->value.IsArray() || users->value.Size() > kSnapshotChunk) {
    return;
  }
  std::string from(*relay);
  for (const auto& u : users->value.GetArray()) {
    if (!u.IsObject()) continue;
    auto uid = json::GetId(u, "user_id");
    auto status = json::GetString(u, "status", 16);
    if (!uid.ok() || !status.ok() || !ValidStatus(*status) || *status == "offline") continue;
    SetPresence(*uid, from, std::string(*status), 0);
  }
}

bool Core::PresenceDue(int64_t now) const {
  return now >= presence_beat_at_ || now >= presence_lapse_at_ || !last_seen_due_.empty();
}

void Core::PresenceTick() {
  int64_t now = clock_->NowMs();
  if (now >= presence_beat_at_) {
    presence_beat_at_ = now + static_cast<int64_t>(cfg_.presence_interval_s) * 1000;
    AnnouncePresence();
    NoteOnlineSeen(now);
  }
  // A peer's word lapses: its users go offline here as of when it was last heard.
  int64_t ttl = PresenceTtlMs(), next = INT64_MAX;
  std::vector<std::pair<uint64_t, std::string>> lapsed;
  for (const auto& [uid, by_relay] : presence_) {
    for (const auto& [relay, seen] : by_relay) {
      if (relay == cfg_.relay_name || seen.status == "offline") continue;
      if (now - seen.heard > ttl)
        lapsed.emplace_back(uid, relay);
      else
        next = std::min(next, seen.heard + ttl + 1);
    }
  }
  presence_lapse_at_ = next;
  for (const auto& [uid, relay] : lapsed) SetPresence(uid, relay, "offline", 0, presence_[uid][relay].heard);
  SaveLastSeen();
}

std::vector<std::pair<uint64_t, std::string>> Core::LocalOnline() const {
  std::vector<std::pair<uint64_t, std::string>> online;
  for (const auto& [uid, by_relay] : presence_) {
    auto it = by_relay.find(cfg_.relay_name);
    if (it != by_relay.end() && it->second.status != "offline") online.emplace_back(uid, it->second.status);
  }
  return online;
}

void Core::AnnouncePresence() {
  if (!replicate_) return;
  std::vector<std::pair<uint64_t, std::string>> online = LocalOnline();
  for (size_t i = 0; i < online.size(); i += kSnapshotChunk) {
    json::JsonWriter w;
    w.BeginObject().Key("type").Str("presence_snapshot").Key("relay").Str(cfg_.relay_name).Key("users").BeginArray();
    for (size_t j = i; j < std::min(online.size(), i + kSnapshotChunk); ++j) {
      w.BeginObject().Key("user_id").Id(online[j].first).Key("status").Str(online[j].second).EndObject();
    }
    w.EndArray().EndObject();
    ForwardEphemeral(0, 0, w.Take());
  }
}

void Core::LoadLastSeen() {
  auto rows = store_.writer().LastSeen(kMaxLoadedLastSeen);
  if (!rows.ok()) {
    log::Warn("store: cannot read last-seen times", {{"error", rows.status().message()}});
    return;
  }
  for (const store::LastSeenRow& r : *rows) {
    PresenceSeen& seen = presence_[r.user_id][cfg_.relay_name];
    seen.status = "offline";
    seen.since = seen.heard = r.at;
  }
}

void Core::NoteOnlineSeen(int64_t now) {
  for (const auto& [uid, status] : LocalOnline()) last_seen_due_[uid] = now;
}

void Core::SaveLastSeen() {
  if (last_seen_due_.empty()) return;
  std::vector<store::LastSeenRow> rows;
  rows.reserve(std::min(kLastSeenChunk, last_seen_due_.size()));
  for (auto it = last_seen_due_.begin(); it != last_seen_due_.end() && rows.size() < kLastSeenChunk;) {
    rows.push_back({it->first, it->second});
    it = last_seen_due_.erase(it);
  }
  // In a savepoint: a failure costs these times only, not the batch's other commands.
  auto& w = store_.writer();
  Status s = w.Savepoint();
  if (s.ok()) {
    s = w.PutLastSeen(rows);
    if (s.ok())
      s = w.Release();
    else
      (void)w.RollbackToSavepoint();
  }
  if (!s.ok()) {
    log::Warn("store: cannot store last-seen times", {{"error", s.message()}});
    return;
  }
  AfterCommit([this, n = rows.size()](bool ok) {
    if (!ok) return;
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_.last_seen_saved += n;
  });
  if (!last_seen_due_.empty()) Post([this] { SaveLastSeen(); });  // the rest in the next batch
}

std::vector<Core::PresenceNow> Core::PresenceOfUsers(const std::vector<uint64_t>& ids) const {
  std::vector<PresenceNow> out;
  out.reserve(ids.size());
  for (uint64_t uid : ids) out.push_back(PresenceOf(uid));
  return out;
}

}  // namespace chatd
