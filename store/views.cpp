#include "store/views.h"

#include <cstdint>
#include <string>
#include <utility>

#include "base/json.h"
#include "crypto/device_keys.h"
#include "store/store.h"

namespace chatd::store {
namespace {

using crypto::Kind;
using json::Value;

std::string_view Str(const Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsString()) return {};
  return {it->value.GetString(), it->value.GetStringLength()};
}

uint64_t Id(const Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd()) return 0;
  return json::IdFromValue(it->value).value_or(0);
}

Status ApplyUserCreate(Db& db, const crypto::Envelope& env, const Value& b) {
  std::string username(Str(b, "username"));
  if (username.empty()) return Corrupt("user_create without username");
  auto st = db.Prepare(
      "INSERT INTO users(user_id, username, relay, handle, first_name, last_name, created_at) "
      "VALUES(?,?,?,?,?,?,?) ON CONFLICT(user_id) DO NOTHING");
  if (!st.ok()) return st.status();
  return st->Bind(1, env.author).Bind(2, username).Bind(3, env.origin)
      .Bind(4, username + "@" + env.origin).Bind(5, Str(b, "first_name")).Bind(6, Str(b, "last_name"))
      .Bind(7, env.created_at).Run();
}

// Each field last-writer-wins by envelope id (profile_fields keeps the id that set it), so
// two devices changing a profile on two relays at once end the same everywhere.
Status ApplyUserProfile(Db& db, const crypto::Envelope& env, const Value& b) {
  static const char* kFields[] = {"first_name", "last_name", "status_message", "profile_picture_url"};
  for (const char* f : kFields) {
    auto it = b.FindMember(f);
    if (it == b.MemberEnd() || !it->value.IsString()) continue;
    auto newer = db.Prepare(
        "INSERT INTO profile_fields(user_id, field, id) VALUES(?,?,?) ON CONFLICT(user_id, field) "
        "DO UPDATE SET id=excluded.id WHERE excluded.id > profile_fields.id");
    if (!newer.ok()) return newer.status();
    if (Status s = newer->Bind(1, env.author).Bind(2, std::string_view(f)).Bind(3, env.id).Run(); !s.ok()) return s;
    if (db.Changes() == 0) continue;  // a newer envelope set this field already
    auto st = db.Prepare(std::string("UPDATE users SET ") + f + "=? WHERE user_id=?");
    if (!st.ok()) return st.status();
    Status s = st->Bind(1, std::string_view(it->value.GetString(), it->value.GetStringLength()))
                   .Bind(2, env.author).Run();
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

// Last writer wins by envelope id per (user, setting), whatever order they arrive in.
Status ApplyPrivacy(Db& db, const crypto::Envelope& env, const Value& b) {
  if (!ValidPrivacyBody(b)) return Status::Ok();  // kept in the log, changes nothing
  auto st = db.Prepare(
      "INSERT INTO privacy(user_id, setting, value, id) VALUES(?,?,?,?) ON CONFLICT(user_id, setting) "
      "DO UPDATE SET value=excluded.value, id=excluded.id WHERE excluded.id > privacy.id");
  if (!st.ok()) return st.status();
  for (const char* name : kPrivacySettings) {
    auto it = b.FindMember(name);
    if (it == b.MemberEnd()) continue;
    std::string value = it->value.IsBool() ? (it->value.GetBool() ? "true" : "false")
                                           : std::string(it->value.GetString(), it->value.GetStringLength());
    st->Reset();
    if (Status s = st->Bind(1, env.author).Bind(2, std::string_view(name)).Bind(3, value).Bind(4, env.id).Run();
        !s.ok()) {
      return s;
    }
  }
  return Status::Ok();
}

// Tokens of user_id (device_id 0: of every device) issued before not_before are refused.
// Monotone (the later time wins), so the result does not depend on arrival order.
Status Revoke(Db& db, uint64_t user_id, uint64_t device_id, int64_t not_before, int64_t at) {
  auto st = db.Prepare(
      "INSERT INTO revocations(user_id, device_id, not_before, at) VALUES(?,?,?,?) "
      "ON CONFLICT(user_id, device_id) DO UPDATE SET not_before=max(not_before, excluded.not_before), "
      "at=max(at, excluded.at)");
  if (!st.ok()) return st.status();
  return st->Bind(1, user_id).Bind(2, device_id).Bind(3, not_before).Bind(4, at).Run();
}

// {"user_id","disabled"}: only the user's home relay emits it (checked by the core), so
// one origin's seq order decides, on every relay alike.
Status ApplyUserDisable(Db& db, const crypto::Envelope& env, const Value& b) {
  uint64_t user_id = Id(b, "user_id");
  auto it = b.FindMember("disabled");
  if (!user_id || it == b.MemberEnd() || !it->value.IsBool()) return Corrupt("user_disable without user_id/disabled");
  bool disabled = it->value.GetBool();
  auto st = db.Prepare("UPDATE users SET disabled=? WHERE user_id=?");
  if (!st.ok()) return st.status();
  Status s = st->Bind(1, disabled ? 1 : 0).Bind(2, user_id).Run();
  if (!s.ok() || !disabled) return s;
  return Revoke(db, user_id, 0, env.created_at, env.created_at);
}

// {"device_id"}: that device, for good; {"all":true,"not_before":ms}: every device's
// tokens issued before then.
Status ApplySessionRevoke(Db& db, const crypto::Envelope& env, const Value& b) {
  auto all = b.FindMember("all");
  if (all != b.MemberEnd() && all->value.IsTrue()) {
    auto nb = b.FindMember("not_before");
    if (nb == b.MemberEnd() || !nb->value.IsInt64()) return Corrupt("session_revoke without not_before");
    return Revoke(db, env.author, 0, nb->value.GetInt64(), env.created_at);
  }
  uint64_t device_id = Id(b, "device_id");
  if (!device_id) return Corrupt("session_revoke without device_id");
  return Revoke(db, env.author, device_id, INT64_MAX, env.created_at);
}

// Membership is derived from its history: the latest add/remove by envelope id decides
// whether the user is a member, the latest role change after that add decides the role.
// So concurrent changes give the same result on every relay, whatever the arrival order.
Status RecomputeMember(Db& db, uint64_t chat_id, uint64_t user_id) {
  auto st = db.Prepare("SELECT op, role, at FROM member_events WHERE chat_id=? AND user_id=? ORDER BY id DESC");
  if (!st.ok()) return st.status();
  st->Bind(1, chat_id).Bind(2, user_id);
  std::string role;
  bool member = false;
  int64_t at = 0;
  for (;;) {
    auto r = st->Step();
    if (!r.ok()) return r.status();
    if (!r.value()) break;
    std::string op = st->Text(0);
    if (op == "role") {
      if (role.empty()) role = st->Text(1);
      continue;
    }
    member = op == "add";
    if (member && role.empty()) role = st->Text(1);
    at = st->Int(2);
    break;
  }
  if (!member) {
    auto del = db.Prepare("DELETE FROM members WHERE chat_id=? AND user_id=?");
    if (!del.ok()) return del.status();
    return del->Bind(1, chat_id).Bind(2, user_id).Run();
  }
  auto up = db.Prepare(
      "INSERT INTO members(chat_id, user_id, role, joined_at) VALUES(?,?,?,?) "
      "ON CONFLICT(chat_id, user_id) DO UPDATE SET role=excluded.role");
  if (!up.ok()) return up.status();
  return up->Bind(1, chat_id).Bind(2, user_id).Bind(3, role).Bind(4, at).Run();
}

Status MemberEvent(Db& db, const crypto::Envelope& env, uint64_t user_id, std::string_view op,
                   std::string_view role) {
  auto st = db.Prepare(
      "INSERT OR IGNORE INTO member_events(chat_id, user_id, id, origin, seq, op, role, at) "
      "VALUES(?,?,?,?,?,?,?,?)");
  if (!st.ok()) return st.status();
  Status s = st->Bind(1, env.chat_id).Bind(2, user_id).Bind(3, env.id).Bind(4, env.origin).Bind(5, env.seq)
                 .Bind(6, op).Bind(7, role).Bind(8, env.created_at).Run();
  if (!s.ok()) return s;
  return RecomputeMember(db, env.chat_id, user_id);
}

Status ApplyChatCreate(Db& db, const crypto::Envelope& env, const Value& b) {
  std::string_view direct_key = Str(b, "direct_key");
  auto st = db.Prepare(
      "INSERT INTO chats(chat_id, chat_type, chat_name, chat_description, created_by, "
      "created_at, direct_key) VALUES(?,?,?,?,?,?,?) ON CONFLICT(chat_id) DO NOTHING");
  if (!st.ok()) return st.status();
  Status s = st->Bind(1, env.chat_id).Bind(2, Str(b, "chat_type")).Bind(3, Str(b, "chat_name"))
                 .Bind(4, Str(b, "chat_description")).Bind(5, env.author).Bind(6, env.created_at)
                 .BindOpt(7, direct_key).Run();
  if (!s.ok()) return s;
  auto it = b.FindMember("members");
  if (it == b.MemberEnd() || !it->value.IsArray()) return Corrupt("chat_create without members");
  for (const auto& m : it->value.GetArray()) {
    if (!m.IsObject()) continue;
    uint64_t uid = Id(m, "user_id");
    std::string_view role = Str(m, "role");
    if (!uid || role.empty()) continue;
    s = MemberEvent(db, env, uid, "add", role);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

Status ApplyMemberAdd(Db& db, const crypto::Envelope& env, const Value& b) {
  auto it = b.FindMember("user_ids");
  if (it == b.MemberEnd() || !it->value.IsArray()) return Corrupt("member_add without user_ids");
  for (const auto& v : it->value.GetArray()) {
    auto uid = json::IdFromValue(v);
    if (!uid) continue;
    Status s = MemberEvent(db, env, *uid, "add", "member");
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

Status ApplyMemberRemove(Db& db, const crypto::Envelope& env, const Value& b) {
  return MemberEvent(db, env, Id(b, "user_id"), "remove", "");
}

Status ApplyMemberRole(Db& db, const crypto::Envelope& env, const Value& b) {
  return MemberEvent(db, env, Id(b, "user_id"), "role", Str(b, "role"));
}

// Each field is last-writer-wins by envelope id (its *_id column), so two relays that apply
// concurrent updates in different orders end with the same chat.
Status ApplyChatUpdate(Db& db, const crypto::Envelope& env, const Value& b) {
  static constexpr std::pair<const char*, const char*> kTextFields[] = {
      {"chat_name", "UPDATE chats SET chat_name=?1, name_id=?3 WHERE chat_id=?2 AND name_id < ?3"},
      {"chat_description",
       "UPDATE chats SET chat_description=?1, description_id=?3 WHERE chat_id=?2 AND description_id < ?3"},
  };
  for (const auto& [field, sql] : kTextFields) {
    auto it = b.FindMember(field);
    if (it == b.MemberEnd() || !it->value.IsString()) continue;
    auto st = db.Prepare(sql);
    if (!st.ok()) return st.status();
    Status s = st->Bind(1, std::string_view(it->value.GetString(), it->value.GetStringLength()))
                   .Bind(2, env.chat_id)
                   .Bind(3, env.id)
                   .Run();
    if (!s.ok()) return s;
  }
  auto it = b.FindMember("disappearing_seconds");
  if (it != b.MemberEnd() && it->value.IsInt64()) {
    auto st = db.Prepare("UPDATE chats SET disappearing_seconds=?1, timer_id=?3 WHERE chat_id=?2 AND timer_id < ?3");
    if (!st.ok()) return st.status();
    return st->Bind(1, it->value.GetInt64()).Bind(2, env.chat_id).Bind(3, env.id).Run();
  }
  return Status::Ok();
}

// The header facts of a post whose body is gone (erased_posts); a no-op if the message
// is in the view (a tombstone, or a row ExpireDue turns into a stub itself).
Status StubErasedPost(Db& db, const crypto::Envelope& env, uint64_t pos) {
  auto st = db.Prepare(
      "INSERT OR IGNORE INTO erased_posts(message_id, chat_id, sender_id, created_at, pos) SELECT ?1,?2,?3,?4,?5 "
      "WHERE NOT EXISTS (SELECT 1 FROM messages WHERE message_id=?1)");
  if (!st.ok()) return st.status();
  return st->Bind(1, env.id).Bind(2, env.chat_id).Bind(3, env.author).Bind(4, env.created_at).Bind(5, pos).Run();
}

Status ApplyPost(Db& db, const crypto::Envelope& env, const Value& b, uint64_t pos) {
  std::string_view client_key = Str(b, "client_key");
  // A forwarded copy names its source: {"forwarded_from": {"chat_id", "message_id"}}.
  auto fwd_it = b.FindMember("forwarded_from");
  const Value* fwd = fwd_it != b.MemberEnd() && fwd_it->value.IsObject() ? &fwd_it->value : nullptr;
  uint64_t fwd_chat = fwd ? Id(*fwd, "chat_id") : 0;
  auto enc_it = b.FindMember("encrypted");  // end-to-end encrypted: opaque, never indexed
  const bool encrypted = enc_it != b.MemberEnd() && enc_it->value.IsTrue();
  const uint64_t file_id = Id(b, "file_id");
  auto st = db.Prepare(
      "INSERT INTO messages(message_id, chat_id, sender_id, message_type, content, reply_to, file_id, "
      "client_key, created_at, pos, expires_at, forwarded_chat_id, forwarded_message_id, encrypted) "
      "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
  if (!st.ok()) return st.status();
  Status s = st->Bind(1, env.id)
                 .Bind(2, env.chat_id)
                 .Bind(3, env.author)
                 .Bind(4, Str(b, "message_type"))
                 .Bind(5, Str(b, "content"))
                 .Bind(6, Id(b, "reply_to_message_id"))
                 .Bind(7, file_id)
                 .BindOpt(8, client_key)
                 .Bind(9, env.created_at)
                 .Bind(10, pos)
                 .Bind(11, ExpiresAt(env, b))
                 .Bind(12, fwd_chat)
                 .Bind(13, fwd_chat ? Id(*fwd, "message_id") : 0)
                 .Bind(14, encrypted ? 1 : 0)
                 .Run();
  if (!s.ok()) return s;
  if (file_id) {  // local bookkeeping, not a view (schema step 16)
    auto sent = db.Prepare("INSERT OR IGNORE INTO file_sent(file_id) VALUES(?)");
    if (!sent.ok()) return sent.status();
    return sent->Bind(1, file_id).Run();
  }
  return Status::Ok();
}

// An edit changes a message still in the view (last-writer-wins by envelope id) and is
// listed in message_edits, so that a delete can erase its text too. An edit of a deleted or
// erased message changes nothing, and its own text is erased at once.
Status ApplyEdit(Db& db, const crypto::Envelope& env, const Value& b, uint64_t pos, std::vector<uint64_t>* erased) {
  const uint64_t message_id = Id(b, "message_id");
  auto st = db.Prepare(
      "UPDATE messages SET content=?1, edit_id=?2, edited_at=?3 "
      "WHERE message_id=?4 AND chat_id=?5 AND edit_id < ?2 AND deleted=0");
  if (!st.ok()) return st.status();
  Status s = st->Bind(1, Str(b, "content"))
                 .Bind(2, env.id)
                 .Bind(3, env.created_at)
                 .Bind(4, message_id)
                 .Bind(5, env.chat_id)
                 .Run();
  if (!s.ok()) return s;
  auto live = db.Prepare("SELECT 1 FROM messages WHERE message_id=? AND chat_id=? AND deleted=0");
  if (!live.ok()) return live.status();
  live->Bind(1, message_id).Bind(2, env.chat_id);
  auto r = live->Step();
  if (!r.ok()) return r.status();
  const bool in_view = r.value();
  live->Reset();
  if (in_view) {
    auto list = db.Prepare("INSERT OR IGNORE INTO message_edits(message_id, pos) VALUES(?,?)");
    if (!list.ok()) return list.status();
    return list->Bind(1, message_id).Bind(2, pos).Run();
  }
  if (erased) erased->push_back(pos);
  return EraseBodies(db, {pos});
}

// Delete for everyone (DESIGN.md §4, redaction): the post's and its edits' bodies are erased
// from the log (their signed headers stay), the message's reactions go, and the message
// becomes a tombstone made of its header facts only (id, chat, sender, time, log position):
// the same row whether the post was in the view, or erased before (a stub in erased_posts),
// live or in a rebuild. A tombstone stays, unless its message was disappearing: then the
// delete carries the message's expires_at, and the tombstone goes at that time.
Status ApplyDelete(Db& db, const crypto::Envelope& env, const Value& b, std::vector<uint64_t>* erased) {
  const uint64_t message_id = Id(b, "message_id");
  auto bodies = db.Prepare(
      "SELECT pos FROM messages WHERE message_id=?1 AND chat_id=?2 AND deleted=0 "
      "UNION ALL SELECT e.pos FROM message_edits e JOIN messages m ON m.message_id=e.message_id "
      "WHERE e.message_id=?1 AND m.chat_id=?2");
  if (!bodies.ok()) return bodies.status();
  bodies->Bind(1, message_id).Bind(2, env.chat_id);
  std::vector<uint64_t> positions;
  for (;;) {
    auto r = bodies->Step();
    if (!r.ok()) return r.status();
    if (!r.value()) break;
    positions.push_back(bodies->U64(0));
  }
  bodies->Reset();
  if (Status s = EraseBodies(db, positions); !s.ok()) return s;
  if (erased) erased->insert(erased->end(), positions.begin(), positions.end());
  // The tombstone of a disappearing message carries the message's time (the delete says
  // it): hidden from reads then, and dropped by Writer::ExpireDue.
  const int64_t expires_at = ExpiresAt(env, b);
  auto tomb = db.Prepare(
      "UPDATE messages SET message_type='text', content='', reply_to=0, file_id=0, client_key=NULL, edit_id=0, "
      "edited_at=0, deleted=1, expires_at=?3, forwarded_chat_id=0, forwarded_message_id=0, encrypted=0 "
      "WHERE message_id=?1 AND chat_id=?2");
  if (!tomb.ok()) return tomb.status();
  Status s = tomb->Bind(1, message_id).Bind(2, env.chat_id).Bind(3, expires_at).Run();
  if (!s.ok()) return s;
  auto from_stub = db.Prepare(
      "INSERT OR IGNORE INTO messages(message_id, chat_id, sender_id, message_type, content, created_at, pos, "
      "deleted, expires_at) SELECT message_id, chat_id, sender_id, 'text', '', created_at, pos, 1, ?3 "
      "FROM erased_posts WHERE message_id=?1 AND chat_id=?2");
  if (!from_stub.ok()) return from_stub.status();
  s = from_stub->Bind(1, message_id).Bind(2, env.chat_id).Bind(3, expires_at).Run();
  if (!s.ok()) return s;
  for (const char* sql : {"DELETE FROM erased_posts WHERE message_id=?1 AND chat_id=?2",
                          "DELETE FROM message_edits WHERE message_id=?1 AND EXISTS (SELECT 1 FROM messages "
                          "WHERE message_id=?1 AND chat_id=?2)",
                          "DELETE FROM reactions WHERE message_id=?1 AND EXISTS (SELECT 1 FROM messages "
                          "WHERE message_id=?1 AND chat_id=?2)"}) {
    auto st = db.Prepare(sql);
    if (!st.ok()) return st.status();
    s = st->Bind(1, message_id).Bind(2, env.chat_id).Run();
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

Status ApplyReaction(Db& db, const crypto::Envelope& env, const Value& b) {
  // A keyed set with tombstones: the newest add or remove (by envelope id) wins. Only on a
  // message still in the view and not deleted: the reactions of an erased (disappeared or
  // deleted) message go with it, and a rebuild from the log must not bring them back.
  bool remove = Str(b, "op") == "remove";
  auto st = db.Prepare(
      "INSERT INTO reactions(message_id, user_id, reaction_type, id, removed) SELECT ?1,?2,?3,?4,?5 "
      "WHERE EXISTS (SELECT 1 FROM messages WHERE message_id=?1 AND deleted=0) "
      "ON CONFLICT(message_id, user_id, reaction_type) DO UPDATE SET id=excluded.id, "
      "removed=excluded.removed WHERE excluded.id > reactions.id");
  if (!st.ok()) return st.status();
  return st->Bind(1, Id(b, "message_id")).Bind(2, env.author).Bind(3, Str(b, "reaction_type"))
      .Bind(4, env.id).Bind(5, remove ? 1 : 0).Run();
}

Status ApplyReceipt(Db& db, const crypto::Envelope& env, const Value& b) {
  uint64_t up_to = Id(b, "up_to_message_id");
  bool read = Str(b, "status") == "read";
  auto st = db.Prepare(
      "INSERT INTO receipts(chat_id, user_id, delivered_up_to, read_up_to) VALUES(?1,?2,?3,?4) "
      "ON CONFLICT(chat_id, user_id) DO UPDATE SET "
      "delivered_up_to=max(delivered_up_to, excluded.delivered_up_to), "
      "read_up_to=max(read_up_to, excluded.read_up_to)");
  if (!st.ok()) return st.status();
  return st->Bind(1, env.chat_id).Bind(2, env.author).Bind(3, up_to).Bind(4, read ? up_to : 0).Run();
}

// Blocks: the history of each (blocker, blocked) pair; its newest event by id decides.
// {"user_id"}: the blocked (or unblocked) user; the author is the blocker.
Status ApplyBlock(Db& db, const crypto::Envelope& env, const Value& b, bool block) {
  uint64_t blocked = Id(b, "user_id");
  if (!blocked) return Corrupt("block without user_id");
  auto st =
      db.Prepare("INSERT OR IGNORE INTO block_events(blocker, blocked, id, origin, seq, op, at) VALUES(?,?,?,?,?,?,?)");
  if (!st.ok()) return st.status();
  return st->Bind(1, env.author)
      .Bind(2, blocked)
      .Bind(3, env.id)
      .Bind(4, env.origin)
      .Bind(5, env.seq)
      .Bind(6, block ? "block" : "unblock")
      .Bind(7, env.created_at)
      .Run();
}

// The contact state of a pair is last-writer-wins by envelope id over accepts (active)
// and declines, cancels and removals (inactive), whatever order they arrive in.
Status SetContact(Db& db, const crypto::Envelope& env, uint64_t a, uint64_t b, bool active) {
  if (!a || !b || a == b) return Status::Ok();
  auto st = db.Prepare(
      "INSERT INTO contacts(user_a, user_b, id, active, since) VALUES(?,?,?,?,?) "
      "ON CONFLICT(user_a, user_b) DO UPDATE SET id=excluded.id, active=excluded.active, "
      "since=CASE WHEN contacts.active AND excluded.active THEN contacts.since ELSE excluded.since END "
      "WHERE excluded.id > contacts.id");
  if (!st.ok()) return st.status();
  return st->Bind(1, std::min(a, b))
      .Bind(2, std::max(a, b))
      .Bind(3, env.id)
      .Bind(4, active ? 1 : 0)
      .Bind(5, env.created_at)
      .Run();
}

// {"user_id"}: the author asks that user to become a contact; request_id = the envelope id.
// The other user of a system-stream envelope sees it too: sync replays it to them.
Status AddAudience(Db& db, uint64_t user_id, uint64_t pos) {
  if (!user_id || !pos) return Status::Ok();
  auto st = db.Prepare("INSERT OR IGNORE INTO system_audience(user_id, pos) VALUES(?,?)");
  if (!st.ok()) return st.status();
  return st->Bind(1, user_id).Bind(2, pos).Run();
}

Status ApplyContactRequest(Db& db, const crypto::Envelope& env, const Value& b, uint64_t pos) {
  uint64_t to = Id(b, "user_id");
  if (!to || to == env.author) return Corrupt("contact_request without a valid user_id");
  auto st = db.Prepare(
      "INSERT OR IGNORE INTO contact_requests(request_id, from_user, to_user, origin, seq, created_at) "
      "VALUES(?,?,?,?,?,?)");
  if (!st.ok()) return st.status();
  Status s = st->Bind(1, env.id)
                 .Bind(2, env.author)
                 .Bind(3, to)
                 .Bind(4, env.origin)
                 .Bind(5, env.seq)
                 .Bind(6, env.created_at)
                 .Run();
  return s.ok() ? AddAudience(db, to, pos) : s;
}

// contact_accept {"request_id"}: by the request's recipient. contact_remove
// {"request_id"}: declined (by the recipient) or cancelled (by the sender);
// contact_remove {"user_id"}: the author ends the contact with that user.
Status ApplyContactDecision(Db& db, const crypto::Envelope& env, const Value& b, uint64_t pos) {
  uint64_t request_id = Id(b, "request_id");
  if (!request_id) {
    Status s = SetContact(db, env, env.author, Id(b, "user_id"), false);
    return s.ok() ? AddAudience(db, Id(b, "user_id"), pos) : s;
  }
  auto rq = db.Prepare("SELECT from_user, to_user FROM contact_requests WHERE request_id=?");
  if (!rq.ok()) return rq.status();
  rq->Bind(1, request_id);
  auto row = rq->Step();
  if (!row.ok()) return row.status();
  if (!row.value()) return Corrupt("contact decision for an unknown request");
  uint64_t from = rq->U64(0), to = rq->U64(1);
  bool accept = env.kind == Kind::kContactAccept;
  const char* status = accept ? "accepted" : (env.author == from ? "cancelled" : "declined");
  auto st = db.Prepare("UPDATE contact_requests SET status=?, status_id=? WHERE request_id=? AND status_id < ?");
  if (!st.ok()) return st.status();
  Status s = st->Bind(1, status).Bind(2, env.id).Bind(3, request_id).Bind(4, env.id).Run();
  if (!s.ok()) return s;
  s = SetContact(db, env, from, to, accept);
  return s.ok() ? AddAudience(db, env.author == from ? to : from, pos) : s;
}

// hide_for_me {"chat_id","message_id"}: the author no longer sees that message.
Status ApplyHideForMe(Db& db, const crypto::Envelope& env, const Value& b) {
  auto st = db.Prepare("INSERT OR IGNORE INTO hidden(user_id, message_id, chat_id) VALUES(?,?,?)");
  if (!st.ok()) return st.status();
  return st->Bind(1, env.author).Bind(2, Id(b, "message_id")).Bind(3, Id(b, "chat_id")).Run();
}

// {"file_id" (= the envelope id), "original_filename", "mime_type", "file_size", "sha256",
// "file_type"}: a file's metadata; written once (the id is the key), so order-independent.
Status ApplyFileCreate(Db& db, const crypto::Envelope& env, const Value& b) {
  std::string_view sha = Str(b, "sha256"), name = Str(b, "original_filename"), mime = Str(b, "mime_type"),
                   type = Str(b, "file_type");
  auto size = b.FindMember("file_size");
  bool hex = sha.size() == 64 && sha.find_first_not_of("0123456789abcdef") == std::string_view::npos;
  if (Id(b, "file_id") != env.id || env.chat_id == 0 || !hex || name.empty() || name.size() > 255 || mime.empty() ||
      mime.size() > 127 || type.empty() || type.size() > 16 || size == b.MemberEnd() || !size->value.IsUint64()) {
    return Corrupt("file_create with a malformed body");
  }
  auto st = db.Prepare(
      "INSERT INTO files(file_id, chat_id, uploader_id, origin, original_filename, mime_type, file_type, file_size, "
      "sha256, created_at, seq) VALUES(?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(file_id) DO NOTHING");
  if (!st.ok()) return st.status();
  return st->Bind(1, env.id)
      .Bind(2, env.chat_id)
      .Bind(3, env.author)
      .Bind(4, env.origin)
      .Bind(5, name)
      .Bind(6, mime)
      .Bind(7, type)
      .Bind(8, size->value.GetUint64())
      .Bind(9, sha)
      .Bind(10, env.created_at)
      .Bind(11, env.seq)
      .Run();
}

// device_keys {"device_id", "identity_key", "signed_prekey": {key_id, public_key,
// signature}} or {"device_id", "removed": true}: the author's device (the envelope's
// device) publishes or withdraws its keys. Per (user, device) the highest envelope id wins.
Status ApplyDeviceKeys(Db& db, const crypto::Envelope& env, const Value& b) {
  uint64_t device = Id(b, "device_id");
  if (env.chat_id != 0 || !env.author || !device || std::to_string(device) != env.device) {
    return Corrupt("device_keys without a matching device_id");
  }
  auto rm = b.FindMember("removed");
  const bool removed = rm != b.MemberEnd() && rm->value.IsTrue();
  std::string ik, spk, sig;
  uint32_t spk_id = 0;
  if (!removed) {
    auto bundle = crypto::ParseDeviceBundle(b, 0);  // verifies the signed prekey's signature
    if (!bundle.ok()) return Corrupt("device_keys with a bad bundle: " + bundle.status().message());
    ik = crypto::Base64Encode(bundle->identity_key);
    spk = crypto::Base64Encode(bundle->spk);
    sig = crypto::Base64Encode(bundle->spk_sig);
    spk_id = bundle->spk_id;
  }
  auto st = db.Prepare(
      "INSERT INTO device_keys(user_id, device_id, id, origin, identity_key, spk_id, spk, spk_sig, removed, "
      "updated_at) VALUES(?,?,?,?,?,?,?,?,?,?) ON CONFLICT(user_id, device_id) DO UPDATE SET id=excluded.id, "
      "origin=excluded.origin, identity_key=excluded.identity_key, spk_id=excluded.spk_id, spk=excluded.spk, "
      "spk_sig=excluded.spk_sig, removed=excluded.removed, updated_at=excluded.updated_at "
      "WHERE excluded.id > device_keys.id");
  if (!st.ok()) return st.status();
  return st->Bind(1, env.author)
      .Bind(2, device)
      .Bind(3, env.id)
      .Bind(4, env.origin)
      .Bind(5, ik)
      .Bind(6, int64_t{spk_id})
      .Bind(7, spk)
      .Bind(8, sig)
      .Bind(9, removed ? 1 : 0)
      .Bind(10, env.created_at)
      .Run();
}

}  // namespace

bool ValidPrivacyBody(const json::Value& body) {
  if (!body.IsObject() || body.MemberCount() == 0) return false;
  size_t known = 0;
  for (const char* name : kPrivacySettings) {
    auto it = body.FindMember(name);
    if (it == body.MemberEnd()) continue;
    ++known;
    if (std::string_view(name) == "read_receipts") {
      if (!it->value.IsBool()) return false;
      continue;
    }
    if (!it->value.IsString()) return false;
    std::string_view v(it->value.GetString(), it->value.GetStringLength());
    if (v != "everyone" && v != "contacts" && v != "nobody") return false;
  }
  return known == body.MemberCount();
}

void ReadPrivacy(std::string_view text, Privacy* out) {
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    size_t eq = item.find('=');
    if (eq != std::string_view::npos) {
      std::string_view k = item.substr(0, eq), v = item.substr(eq + 1);
      if (k == "last_seen")
        out->last_seen = v;
      else if (k == "profile_photo")
        out->profile_photo = v;
      else if (k == "about")
        out->about = v;
      else if (k == "groups")
        out->groups = v;
      else if (k == "read_receipts")
        out->read_receipts = v != "false";
    }
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
}

bool CanExpire(Kind kind) { return kind == Kind::kMsgPost || kind == Kind::kMsgEdit || kind == Kind::kMsgDelete; }

int64_t ExpiresAt(const crypto::Envelope& env, const Value& b) {
  constexpr int64_t kMaxDisappearMs = 365LL * 86400 * 1000;
  if (!CanExpire(env.kind)) return 0;
  auto it = b.FindMember("expires_at");
  if (it == b.MemberEnd() || !it->value.IsInt64()) return 0;
  int64_t at = it->value.GetInt64();
  // A delete carries its message's time, which may be past already (then due at once).
  const int64_t after = env.kind == Kind::kMsgDelete ? 0 : env.created_at;
  if (at <= after || at - env.created_at > kMaxDisappearMs) return 0;
  return at;
}

Status ScheduleExpiry(Db& db, const crypto::Envelope& env, uint64_t pos) {
  if (!CanExpire(env.kind)) return Status::Ok();
  // Most messages have no timer: skip the parse unless the key is there at all.
  if (env.body.find("\"expires_at\"") == std::string::npos) return Status::Ok();
  json::Doc doc;
  if (!json::Parse(env.body, &doc).ok() || !doc.IsObject()) return Status::Ok();
  const int64_t at = ExpiresAt(env, doc);
  if (at == 0) return Status::Ok();
  // The message whose view row goes: a post's own; a delete's tombstone; none for an edit.
  const uint64_t message_id = env.kind == Kind::kMsgPost     ? env.id
                              : env.kind == Kind::kMsgDelete ? Id(doc, "message_id")
                                                             : 0;
  auto st = db.Prepare("INSERT OR IGNORE INTO expiring(expires_at, pos, message_id) VALUES(?,?,?)");
  if (!st.ok()) return st.status();
  return st->Bind(1, at).Bind(2, pos).Bind(3, message_id).Run();
}

Status EraseBodies(Db& db, const std::vector<uint64_t>& positions) {
  if (positions.empty()) return Status::Ok();
  auto st = db.Prepare("UPDATE envelopes SET body=NULL, salt=NULL WHERE pos=?");
  if (!st.ok()) return st.status();
  for (uint64_t pos : positions) {
    Status s = st->Bind(1, pos).Run();
    st->Reset();
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

Status ApplyToViews(Db& db, const crypto::Envelope& env, uint64_t pos, std::vector<uint64_t>* erased) {
  // Erased: the header stays and the views keep nothing new, but a post leaves a stub, so
  // that a delete can still make its tombstone and peers' edits and deletes still find it.
  if (env.body.empty()) return env.kind == Kind::kMsgPost ? StubErasedPost(db, env, pos) : Status::Ok();
  json::Doc doc;
  Status s = json::Parse(env.body, &doc);
  if (!s.ok()) return Corrupt("envelope body is not a JSON object");
  const Value& b = doc;
  switch (env.kind) {
    case Kind::kUserCreate: return ApplyUserCreate(db, env, b);
    case Kind::kUserProfile: return ApplyUserProfile(db, env, b);
    case Kind::kUserDisable: return ApplyUserDisable(db, env, b);
    case Kind::kPrivacy:
      return ApplyPrivacy(db, env, b);
    case Kind::kSessionRevoke: return ApplySessionRevoke(db, env, b);
    case Kind::kChatCreate: return ApplyChatCreate(db, env, b);
    case Kind::kChatUpdate: return ApplyChatUpdate(db, env, b);
    case Kind::kMemberAdd: return ApplyMemberAdd(db, env, b);
    case Kind::kMemberRemove: return ApplyMemberRemove(db, env, b);
    case Kind::kMemberRole: return ApplyMemberRole(db, env, b);
    case Kind::kMsgPost: return ApplyPost(db, env, b, pos);
    case Kind::kMsgEdit:
      return ApplyEdit(db, env, b, pos, erased);
    case Kind::kMsgDelete:
      return ApplyDelete(db, env, b, erased);
    case Kind::kReaction: return ApplyReaction(db, env, b);
    case Kind::kReceipt: return ApplyReceipt(db, env, b);
    case Kind::kHideForMe:
      return ApplyHideForMe(db, env, b);
    case Kind::kBlock:
      return ApplyBlock(db, env, b, true);
    case Kind::kUnblock:
      return ApplyBlock(db, env, b, false);
    case Kind::kContactRequest:
      return ApplyContactRequest(db, env, b, pos);
    case Kind::kContactAccept:
    case Kind::kContactRemove:
      return ApplyContactDecision(db, env, b, pos);
    case Kind::kFileCreate:
      return ApplyFileCreate(db, env, b);
    case Kind::kDeviceKeys:
      return ApplyDeviceKeys(db, env, b);
    default: return Status::Ok();  // kinds without a view yet are kept in the log only
  }
}

}  // namespace chatd::store
