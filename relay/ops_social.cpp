// Core operations on blocks, contacts and reports (core thread only), and their validity
// against an envelope's causal past (for peers' envelopes).
//
// Blocks and contact changes are envelopes in the system stream (chat_id 0), so every
// relay holds them and applies the same rules: a direct message between two users one of
// whom had blocked the other, or a contact request between them, is refused where it is
// made and invalid everywhere else (as of its causal past). Reports stay on the relay
// where they are filed: they are for that relay's moderators.
#include <algorithm>

#include "base/json.h"
#include "relay/core.h"

namespace chatd {

crypto::Envelope SystemEnvelope(crypto::Kind kind, const Actor& actor, std::string body) {
  crypto::Envelope env;
  env.kind = kind;
  env.chat_id = 0;
  env.author = actor.user_id;
  env.device = std::to_string(actor.device_id);
  env.body = std::move(body);
  return env;
}

namespace {

std::string UserBody(uint64_t user_id) {
  json::JsonWriter w;
  w.BeginObject().Key("user_id").Id(user_id).EndObject();
  return w.Take();
}

std::string RequestBody(uint64_t request_id) {
  json::JsonWriter w;
  w.BeginObject().Key("request_id").Id(request_id).EndObject();
  return w.Take();
}

constexpr size_t kMaxReasonBytes = 2000;
constexpr int64_t kReportWindowMs = 24LL * 3600 * 1000;
constexpr int64_t kMaxReportsPerWindow = 50;  // per reporter: bounds what one account can file

}  // namespace

bool InCausalPast(const crypto::Envelope& env, const std::string& origin, uint64_t seq) {
  if (origin.empty()) return true;  // history carried over from before the log recorded it
  if (origin == env.origin) return seq < env.seq;
  for (const auto& [o, s] : env.deps) {
    if (o == origin) return seq <= s;
  }
  return false;
}

uint64_t Core::DirectPeerOf(uint64_t chat_id, uint64_t user_id) {
  auto it = direct_pairs_.find(chat_id);
  if (it == direct_pairs_.end()) {
    std::pair<uint64_t, uint64_t> pair{0, 0};  // a group (or no such chat)
    auto st = store_.writer().db().Prepare("SELECT direct_key FROM chats WHERE chat_id=?");
    if (st.ok()) {
      st->Bind(1, chat_id);
      auto r = st->Step();
      if (r.ok() && r.value()) {
        std::string key = st->Text(0);  // "a:b", or NULL (empty) for a group
        size_t colon = key.find(':');
        if (colon != std::string::npos) {
          pair = {json::ParseId(key.substr(0, colon)).value_or(0), json::ParseId(key.substr(colon + 1)).value_or(0)};
        }
        if (direct_pairs_.size() > 100000) direct_pairs_.clear();  // bound the cache
        it = direct_pairs_.emplace(chat_id, pair).first;           // a chat's type never changes
      }
    }
    if (it == direct_pairs_.end()) return 0;
  }
  const auto& [a, b] = it->second;
  if (a == user_id) return b;
  if (b == user_id) return a;
  return 0;
}

Status Core::CheckNotBlocked(uint64_t actor, uint64_t other) {
  auto& w = store_.writer();
  auto theirs = w.Blocked(other, actor);
  if (!theirs.ok()) return theirs.status();
  if (*theirs) return Forbidden("this user has blocked you", "blocked");
  auto mine = w.Blocked(actor, other);
  if (!mine.ok()) return mine.status();
  if (*mine) return Forbidden("you have blocked this user; unblock them first", "blocked");
  return Status::Ok();
}

bool Core::BlockedAsOf(const crypto::Envelope& env, uint64_t blocker, uint64_t blocked) {
  auto events = store_.writer().BlockEvents(blocker, blocked);
  if (!events.ok()) return true;   // cannot tell: refuse rather than let a block be bypassed
  for (const auto& e : *events) {  // newest first
    if (InCausalPast(env, e.origin, e.seq)) return e.blocked;
  }
  return false;
}

bool Core::ValidSocial(const crypto::Envelope& env) {
  if (env.chat_id != 0) return false;
  json::Doc body;
  if (!json::Parse(env.body, &body).ok() || !body.IsObject()) return false;
  auto& w = store_.writer();
  auto user = json::GetId(body, "user_id");
  switch (env.kind) {
    case crypto::Kind::kBlock:
    case crypto::Kind::kUnblock:
      return user.ok() && *user != env.author;
    case crypto::Kind::kHideForMe: {  // a message of a chat the author was in then
      auto chat = json::GetId(body, "chat_id");
      auto mid = json::GetId(body, "message_id");
      if (!chat.ok() || !mid.ok() || RoleAsOf(env, *chat).empty()) return false;
      auto m = w.Message(*mid);
      return m.ok() && m.value() && m.value()->chat_id == *chat;
    }
    case crypto::Kind::kContactRequest:
      return user.ok() && *user != env.author && !BlockedAsOf(env, *user, env.author) &&
             !BlockedAsOf(env, env.author, *user);
    case crypto::Kind::kContactAccept:
    case crypto::Kind::kContactRemove: {
      auto rid = json::GetId(body, "request_id");
      if (!rid.ok()) return env.kind == crypto::Kind::kContactRemove && user.ok() && *user != env.author;
      auto rq = w.ContactRequest(*rid);
      if (!rq.ok() || !rq.value() || !InCausalPast(env, rq.value()->origin, rq.value()->seq)) return false;
      if (env.kind == crypto::Kind::kContactAccept) return rq.value()->to_user == env.author;
      return rq.value()->to_user == env.author || rq.value()->from_user == env.author;
    }
    default:
      return true;
  }
}

uint64_t Core::SocialCounterpart(const crypto::Envelope& env) {
  if (env.kind != crypto::Kind::kContactRequest && env.kind != crypto::Kind::kContactAccept &&
      env.kind != crypto::Kind::kContactRemove) {
    return 0;  // blocks are not shown to the blocked user
  }
  json::Doc body;
  if (!json::Parse(env.body, &body).ok() || !body.IsObject()) return 0;
  auto rid = json::GetId(body, "request_id");
  if (!rid.ok()) return json::GetId(body, "user_id").ok() ? *json::GetId(body, "user_id") : 0;
  auto rq = store_.writer().ContactRequest(*rid);
  if (!rq.ok() || !rq.value()) return 0;
  return rq.value()->from_user == env.author ? rq.value()->to_user : rq.value()->from_user;
}

Result<store::BlockRow> Core::OpBlock(const Actor& actor, uint64_t user_id, bool block) {
  auto& w = store_.writer();
  if (user_id == actor.user_id) return BadRequest("you cannot block yourself");
  auto u = w.UserById(user_id);
  if (!u.ok()) return u.status();
  if (!u.value()) return NotFound("no such user");
  auto now = w.Blocked(actor.user_id, user_id);
  if (!now.ok()) return now.status();
  if (*now == block) {  // already so: nothing to record
    if (!block) return NotFound("you have not blocked this user");
    auto list = w.BlocksOf(actor.user_id);
    if (!list.ok()) return list.status();
    for (const auto& b : *list) {
      if (b.user_id == user_id) return b;
    }
    return Internal("block vanished");
  }
  crypto::Envelope env =
      SystemEnvelope(block ? crypto::Kind::kBlock : crypto::Kind::kUnblock, actor, UserBody(user_id));
  auto pos = Emit(env);
  if (!pos.ok()) return pos.status();
  Publish(env, *pos, 0);  // the blocker's own devices; the blocked user is not told
  return store::BlockRow{user_id, env.created_at};
}

Result<ContactRequestResult> Core::OpContactRequest(const Actor& actor, uint64_t user_id) {
  auto& w = store_.writer();
  if (user_id == actor.user_id) return BadRequest("you cannot send yourself a contact request");
  auto u = w.UserById(user_id);
  if (!u.ok()) return u.status();
  if (!u.value() || u.value()->disabled) return NotFound("no such user");
  if (Status s = CheckNotBlocked(actor.user_id, user_id); !s.ok()) return s;
  auto contact = w.IsContact(actor.user_id, user_id);
  if (!contact.ok()) return contact.status();
  if (*contact) return Status(Code::kConflict, "you are already contacts", "already_contacts");
  auto mine = w.PendingRequest(actor.user_id, user_id);
  if (!mine.ok()) return mine.status();
  if (mine.value()) return ContactRequestResult{std::move(*mine.value()), true};
  // They asked first: asking back accepts their request.
  auto theirs = w.PendingRequest(user_id, actor.user_id);
  if (!theirs.ok()) return theirs.status();
  if (theirs.value()) {
    if (Status s = OpDecideContact(actor, theirs.value()->request_id, true); !s.ok()) return s;
    auto after = w.ContactRequest(theirs.value()->request_id);
    if (!after.ok()) return after.status();
    if (!after.value()) return Internal("contact request vanished");
    return ContactRequestResult{std::move(*after.value()), false};
  }
  crypto::Envelope env = SystemEnvelope(crypto::Kind::kContactRequest, actor, UserBody(user_id));
  auto pos = Emit(env);
  if (!pos.ok()) return pos.status();
  Publish(env, *pos, 0, SocialCounterpart(env));
  auto row = w.ContactRequest(env.id);
  if (!row.ok()) return row.status();
  if (!row.value()) return Internal("contact request vanished after it was made");
  return ContactRequestResult{std::move(*row.value()), false};
}

Status Core::OpDecideContact(const Actor& actor, uint64_t request_id, bool accept) {
  auto rq = store_.writer().ContactRequest(request_id);
  if (!rq.ok()) return rq.status();
  const bool mine = rq.value() && rq.value()->from_user == actor.user_id;
  if (!rq.value() || (rq.value()->to_user != actor.user_id && !mine)) return NotFound("no such contact request");
  if (accept && mine) return Forbidden("only the recipient can accept a contact request");
  if (rq.value()->status != "pending") {
    return Status(Code::kConflict, "the contact request is already " + rq.value()->status, "request_closed");
  }
  if (accept) {
    if (Status s = CheckNotBlocked(actor.user_id, rq.value()->from_user); !s.ok()) return s;
  }
  crypto::Envelope env = SystemEnvelope(accept ? crypto::Kind::kContactAccept : crypto::Kind::kContactRemove, actor,
                                        RequestBody(request_id));
  auto pos = Emit(env);
  if (!pos.ok()) return pos.status();
  Publish(env, *pos, 0, SocialCounterpart(env));
  return Status::Ok();
}

Status Core::OpRemoveContact(const Actor& actor, uint64_t user_id) {
  auto contact = store_.writer().IsContact(actor.user_id, user_id);
  if (!contact.ok()) return contact.status();
  if (!*contact) return NotFound("this user is not one of your contacts");
  crypto::Envelope env = SystemEnvelope(crypto::Kind::kContactRemove, actor, UserBody(user_id));
  auto pos = Emit(env);
  if (!pos.ok()) return pos.status();
  Publish(env, *pos, 0, SocialCounterpart(env));
  return Status::Ok();
}

Result<store::ReportRow> Core::OpReport(const Actor& actor, uint64_t user_id, uint64_t message_id,
                                        const std::string& reason) {
  auto& w = store_.writer();
  if (reason.empty() || reason.size() > kMaxReasonBytes) {
    return BadRequest("field 'reason' must be 1 to " + std::to_string(kMaxReasonBytes) + " bytes");
  }
  if (!user_id && !message_id) return BadRequest("a report names a message_id, a user_id or both");
  store::ReportRow r;
  r.reporter = actor.user_id;
  r.reason = reason;
  if (message_id) {
    auto m = w.Message(message_id);
    if (!m.ok()) return m.status();
    if (!m.value()) return NotFound("no such message");
    auto role = w.RoleOf(m.value()->chat_id, actor.user_id);
    if (!role.ok()) return role.status();
    if (!role.value()) return NotFound("no such message");  // not one the reporter can read
    if (user_id && user_id != m.value()->sender_id) return BadRequest("user_id is not the message's sender");
    r.chat_id = m.value()->chat_id;
    r.message_id = message_id;
    user_id = m.value()->sender_id;
  }
  if (user_id == actor.user_id) return BadRequest("you cannot report yourself");
  auto u = w.UserById(user_id);
  if (!u.ok()) return u.status();
  if (!u.value()) return NotFound("no such user");
  r.user_id = user_id;
  const int64_t now = clock_->NowMs();
  auto filed = w.ReportsFiledSince(actor.user_id, now - kReportWindowMs);
  if (!filed.ok()) return filed.status();
  if (*filed >= kMaxReportsPerWindow) {
    Status s(Code::kRateLimited, "at most " + std::to_string(kMaxReportsPerWindow) + " reports a day");
    s.retry_after = 3600;
    return s;
  }
  r.report_id = NewId();
  r.created_at = now;
  r.status = "open";
  auto id = w.PutReport(r);
  if (!id.ok()) return id.status();
  return r;
}

Result<store::ReportRow> Core::OpResolveReport(uint64_t report_id, const std::string& resolution) {
  auto& w = store_.writer();
  if (resolution.size() > kMaxReasonBytes) {
    return BadRequest("field 'resolution' is longer than " + std::to_string(kMaxReasonBytes) + " bytes");
  }
  auto done = w.ResolveReport(report_id, resolution, clock_->NowMs());
  if (!done.ok()) return done.status();
  auto r = w.Report(report_id);
  if (!r.ok()) return r.status();
  if (!r.value()) return NotFound("no such report");
  if (!*done) return Status(Code::kConflict, "the report is already resolved", "already_resolved");
  return std::move(*r.value());
}

}  // namespace chatd
