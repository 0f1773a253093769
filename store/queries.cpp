// Read queries shared by the writer (core thread) and the reader pool.
#include <algorithm>
#include <cstring>

#include "base/time.h"
#include "store/query_util.h"
#include "store/store.h"
#include "store/views.h"

namespace chatd::store {
namespace {

constexpr const char* kUserCols =
    "user_id, username, relay, first_name, last_name, status_message, profile_picture_url, created_at, disabled, "
    "(SELECT group_concat(p.setting || '=' || p.value) FROM privacy p WHERE p.user_id = users.user_id)";

UserRow ReadUser(const Stmt& st) {
  UserRow u;
  u.user_id = st.U64(0);
  u.username = st.Text(1);
  u.relay = st.Text(2);
  u.first_name = st.Text(3);
  u.last_name = st.Text(4);
  u.status_message = st.Text(5);
  u.profile_picture_url = st.Text(6);
  u.created_at = st.Int(7);
  u.disabled = st.Int(8) != 0;
  ReadPrivacy(st.Text(9), &u.privacy);
  return u;
}

constexpr const char* kMessageCols =
    "m.message_id, m.chat_id, m.sender_id, m.message_type, m.content, m.reply_to, m.file_id, "
    "m.created_at, m.edited_at, m.deleted, m.pos, m.expires_at, m.forwarded_chat_id, m.forwarded_message_id, "
    "m.encrypted";
constexpr int kMessageColCount = 15;  // the sender's profile columns follow these in History
// The sender's username, relay and picture; the picture only if everyone may see it
// (messages are rendered once for every reader; GET /users/{id} applies the rule per viewer).
constexpr const char* kSenderCols =
    "u.username, u.relay, CASE WHEN EXISTS(SELECT 1 FROM privacy p WHERE p.user_id = u.user_id AND "
    "p.setting = 'profile_photo' AND p.value <> 'everyone') THEN '' ELSE u.profile_picture_url END";

MessageRow ReadMessage(const Stmt& st) {
  MessageRow m;
  m.message_id = st.U64(0);
  m.chat_id = st.U64(1);
  m.sender_id = st.U64(2);
  m.message_type = st.Text(3);
  m.content = st.Text(4);
  m.reply_to = st.U64(5);
  m.file_id = st.U64(6);
  m.created_at = st.Int(7);
  m.edited_at = st.Int(8);
  m.deleted = st.Int(9) != 0;
  m.pos = st.U64(10);
  m.expires_at = st.Int(11);
  m.forwarded_chat_id = st.U64(12);
  m.forwarded_message_id = st.U64(13);
  m.encrypted = st.Int(14) != 0;
  return m;
}

MessageRow ReadMessageWithSender(const Stmt& st) {
  MessageRow m = ReadMessage(st);
  m.sender_username = st.Text(kMessageColCount);
  m.sender_relay = st.Text(kMessageColCount + 1);
  m.sender_picture = st.Text(kMessageColCount + 2);
  return m;
}

}  // namespace

EnvelopeRow ReadEnvelope(const Stmt& st) {
  EnvelopeRow row;
  row.pos = st.U64(0);
  crypto::Envelope& e = row.env;
  e.origin = st.Text(1);
  e.seq = st.U64(2);
  e.id = st.U64(3);
  e.chat_id = st.U64(4);
  e.author = st.U64(5);
  e.device = st.Text(6);
  crypto::KindFromInt(static_cast<uint16_t>(st.Int(7)), &e.kind);
  e.created_at = st.Int(8);
  DepsFromText(st.TextView(9), &e.deps);
  std::string bh = st.Blob(10), sig = st.Blob(11);
  if (bh.size() == e.body_hash.size()) memcpy(e.body_hash.data(), bh.data(), bh.size());
  if (sig.size() == e.sig.size()) memcpy(e.sig.data(), sig.data(), sig.size());
  e.body = st.Blob(12);
  e.salt = st.Blob(13);
  return row;
}

Result<std::optional<UserRow>> Queries::UserById(uint64_t user_id) {
  return One<UserRow>(db_, std::string("SELECT ") + kUserCols + " FROM users WHERE user_id=?",
                      [&](Stmt& s) { s.Bind(1, user_id); }, ReadUser);
}

Result<std::optional<UserRow>> Queries::UserByHandle(std::string_view handle) {
  return One<UserRow>(db_, std::string("SELECT ") + kUserCols + " FROM users WHERE handle=?",
                      [&](Stmt& s) { s.Bind(1, handle); }, ReadUser);
}

Result<std::vector<UserRow>> Queries::SearchUsers(std::string_view query, int limit) {
  auto st = db_.Prepare(std::string("SELECT ") + kUserCols +
                        " FROM users WHERE disabled=0 AND (handle LIKE ?1 ESCAPE '\\' OR "
                        "first_name LIKE ?1 ESCAPE '\\' OR last_name LIKE ?1 ESCAPE '\\') "
                        "ORDER BY handle LIMIT ?2");
  if (!st.ok()) return st.status();
  std::string pattern = "%";
  for (char c : query) {
    if (c == '%' || c == '_' || c == '\\') pattern.push_back('\\');
    pattern.push_back(c);
  }
  pattern.push_back('%');
  st->Bind(1, pattern).Bind(2, limit);
  std::vector<UserRow> out;
  for (;;) {
    auto r = st->Step();
    if (!r.ok()) return r.status();
    if (!r.value()) break;
    out.push_back(ReadUser(*st));
  }
  return out;
}

Result<std::optional<Credentials>> Queries::CredentialsOf(uint64_t user_id) {
  return One<Credentials>(
      db_, "SELECT user_id, email, password_hash FROM credentials WHERE user_id=?",
      [&](Stmt& s) { s.Bind(1, user_id); },
      +[](const Stmt& s) { return Credentials{s.U64(0), s.Text(1), s.Text(2)}; });
}

Result<bool> Queries::EmailTaken(std::string_view email) {
  auto st = db_.Prepare("SELECT 1 FROM credentials WHERE email=?");
  if (!st.ok()) return st.status();
  st->Bind(1, email);
  return st->Step();
}

Result<std::optional<RefreshRow>> Queries::RefreshToken(std::string_view token_hash) {
  return One<RefreshRow>(
      db_, "SELECT user_id, device_id, expires_at, revoked_at FROM refresh_tokens WHERE token_hash=?",
      [&](Stmt& s) { s.Bind(1, token_hash); },
      +[](const Stmt& s) { return RefreshRow{s.U64(0), s.U64(1), s.Int(2), s.Int(3) != 0}; });
}

Result<bool> Queries::CanReadFile(const FileRow& f, uint64_t user_id) {
  // A member of the file's chat, or of a chat where a message (a forwarded copy) shows it.
  auto r = One<int64_t>(
      db_,
      "SELECT 1 FROM members WHERE chat_id=?1 AND user_id=?2 UNION ALL "
      "SELECT 1 FROM messages m JOIN members mb ON mb.chat_id = m.chat_id AND mb.user_id=?2 "
      "WHERE m.file_id=?3 AND m.deleted=0 LIMIT 1",
      [&](Stmt& s) { s.Bind(1, f.chat_id).Bind(2, user_id).Bind(3, f.file_id); },
      +[](const Stmt& s) { return s.Int(0); });
  if (!r.ok()) return r.status();
  return r.value().has_value();
}

Result<std::optional<FileRow>> Queries::File(uint64_t file_id) {
  return One<FileRow>(
      db_,
      "SELECT file_id, chat_id, uploader_id, origin, original_filename, mime_type, file_type, sha256, "
      "file_size, created_at, seq FROM files WHERE file_id=?",
      [&](Stmt& s) { s.Bind(1, file_id); },
      +[](const Stmt& s) {
        return FileRow{s.U64(0),  s.U64(1),  s.U64(2), s.Text(3), s.Text(4), s.Text(5),
                       s.Text(6), s.Text(7), s.U64(8), s.Int(9),  s.U64(10)};
      });
}

namespace {
// FileInUse's condition on files f: ?1 now, ?2 the upload time before which an unsent file
// is dropped. The partial index messages_file serves the first part (it needs file_id <> 0);
// a pending scheduled message (its request as JSON, ids as strings) keeps its file too.
constexpr const char* kFileInUse =
    "(EXISTS (SELECT 1 FROM messages m WHERE m.file_id = f.file_id AND m.file_id <> 0 AND m.deleted = 0 "
    "AND (m.expires_at = 0 OR m.expires_at > ?1)) "
    "OR (f.created_at > ?2 AND NOT EXISTS (SELECT 1 FROM file_sent s WHERE s.file_id = f.file_id)) "
    "OR EXISTS (SELECT 1 FROM scheduled q WHERE q.status = 'pending' AND q.chat_id = f.chat_id "
    "AND json_extract(q.request, '$.file_id') = CAST(f.file_id AS TEXT)))";
}  // namespace

Result<bool> Queries::FileInUse(uint64_t file_id, int64_t now_ms, int64_t unsent_since_ms) {
  auto r = One<int64_t>(
      db_, std::string("SELECT 1 FROM files f WHERE f.file_id = ?3 AND ") + kFileInUse,
      [&](Stmt& s) { s.Bind(1, now_ms).Bind(2, unsent_since_ms).Bind(3, file_id); },
      +[](const Stmt& s) { return s.Int(0); });
  if (!r.ok()) return r.status();
  return r.value().has_value();
}

Result<bool> Queries::ContentInUse(std::string_view sha256, int64_t now_ms, int64_t unsent_since_ms) {
  auto r = One<int64_t>(
      db_, std::string("SELECT 1 FROM files f WHERE f.sha256 = ?3 AND ") + kFileInUse + " LIMIT 1",
      [&](Stmt& s) { s.Bind(1, now_ms).Bind(2, unsent_since_ms).Bind(3, sha256); },
      +[](const Stmt& s) { return s.Int(0); });
  if (!r.ok()) return r.status();
  return r.value().has_value();
}

Result<std::optional<UploadRow>> Queries::Upload(uint64_t upload_id) {
  return One<UploadRow>(
      db_,
      "SELECT upload_id, user_id, chat_id, file_name, mime_type, file_size, chunk_size, created_at, expires_at "
      "FROM uploads WHERE upload_id=?",
      [&](Stmt& s) { s.Bind(1, upload_id); },
      +[](const Stmt& s) {
        return UploadRow{s.U64(0), s.U64(1), s.U64(2), s.Text(3), s.Text(4), s.U64(5), s.U64(6), s.Int(7), s.Int(8)};
      });
}

Result<std::vector<uint64_t>> Queries::ExpiredUploads(int64_t now_ms, int limit) {
  auto st = db_.Prepare("SELECT upload_id FROM uploads WHERE expires_at <= ? ORDER BY expires_at LIMIT ?");
  if (!st.ok()) return st.status();
  st->Bind(1, now_ms).Bind(2, limit);
  std::vector<uint64_t> ids;
  for (;;) {
    auto r = st->Step();
    if (!r.ok()) return r.status();
    if (!r.value()) break;
    ids.push_back(st->U64(0));
  }
  return ids;
}

Result<std::optional<ChatRow>> Queries::Chat(uint64_t chat_id, bool with_members) {
  auto chat = One<ChatRow>(
      db_,
      "SELECT chat_id, chat_type, chat_name, chat_description, created_by, created_at, "
      "disappearing_seconds FROM chats WHERE chat_id=?",
      [&](Stmt& s) { s.Bind(1, chat_id); },
      +[](const Stmt& s) {
        ChatRow c;
        c.chat_id = s.U64(0);
        c.chat_type = s.Text(1);
        c.chat_name = s.Text(2);
        c.chat_description = s.Text(3);
        c.created_by = s.U64(4);
        c.created_at = s.Int(5);
        c.disappearing_seconds = s.Int(6);
        return c;
      });
  if (!chat.ok() || !chat.value() || !with_members) return chat;
  auto st = db_.Prepare("SELECT user_id, role FROM members WHERE chat_id=? ORDER BY joined_at, user_id");
  if (!st.ok()) return st.status();
  st->Bind(1, chat_id);
  for (;;) {
    auto r = st->Step();
    if (!r.ok()) return r.status();
    if (!r.value()) break;
    chat.value()->members.push_back(MemberRow{st->U64(0), st->Text(1)});
  }
  return chat;
}

Result<std::vector<ChatSummary>> Queries::ChatsOf(uint64_t user_id) {
  auto st = db_.Prepare(
      "SELECT c.chat_id, COALESCE((SELECT max(message_id) FROM messages m WHERE m.chat_id = c.chat_id), 0) AS last, "
      "COALESCE(r.read_up_to, 0) FROM members mb "
      "JOIN chats c ON c.chat_id = mb.chat_id "
      "LEFT JOIN receipts r ON r.chat_id = mb.chat_id AND r.user_id = mb.user_id "
      "WHERE mb.user_id=? ORDER BY last DESC, c.chat_id DESC");
  if (!st.ok()) return st.status();
  st->Bind(1, user_id);
  std::vector<std::tuple<uint64_t, uint64_t, uint64_t>> ids;
  for (;;) {
    auto r = st->Step();
    if (!r.ok()) return r.status();
    if (!r.value()) break;
    ids.emplace_back(st->U64(0), st->U64(1), st->U64(2));
  }
  std::vector<ChatSummary> out;
  for (auto [chat_id, last_id, read_up_to] : ids) {
    auto chat = Chat(chat_id, true);
    if (!chat.ok()) return chat.status();
    if (!chat.value()) continue;
    ChatSummary sum;
    sum.chat = std::move(**chat);
    if (last_id) {
      auto hist = History(chat_id, 0, 1, UINT64_MAX, user_id);
      if (!hist.ok()) return hist.status();
      if (!hist->empty()) sum.last_message = std::move(hist->front());
    }
    auto un = db_.Prepare(
        "SELECT count(*) FROM messages m WHERE chat_id=? AND message_id>? AND sender_id<>?3 AND deleted=0 "
        "AND (expires_at = 0 OR expires_at > ?) "
        "AND NOT EXISTS (SELECT 1 FROM hidden h WHERE h.user_id=?3 AND h.message_id=m.message_id)");
    if (!un.ok()) return un.status();
    un->Bind(1, chat_id).Bind(2, read_up_to).Bind(3, user_id).Bind(4, NowMs());
    auto r = un->Step();
    if (!r.ok()) return r.status();
    sum.unread = un->Int(0);
    out.push_back(std::move(sum));
  }
  return out;
}

Result<std::optional<std::string>> Queries::RoleOf(uint64_t chat_id, uint64_t user_id) {
  return One<std::string>(db_, "SELECT role FROM members WHERE chat_id=? AND user_id=?",
                          [&](Stmt& s) { s.Bind(1, chat_id).Bind(2, user_id); },
                          +[](const Stmt& s) { return s.Text(0); });
}

Result<std::vector<MemberEventRow>> Queries::MemberEvents(uint64_t chat_id, uint64_t user_id) {
  auto st = db_.Prepare(
      "SELECT id, origin, seq, op, role FROM member_events WHERE chat_id=? AND user_id=? ORDER BY id DESC");
  if (!st.ok()) return st.status();
  st->Bind(1, chat_id).Bind(2, user_id);
  std::vector<MemberEventRow> out;
  for (;;) {
    auto r = st->Step();
    if (!r.ok()) return r.status();
    if (!r.value()) break;
    out.push_back(MemberEventRow{st->U64(0), st->Text(1), st->U64(2), st->Text(3), st->Text(4)});
  }
  return out;
}

Result<std::optional<uint64_t>> Queries::DirectChat(std::string_view direct_key) {
  return One<uint64_t>(db_, "SELECT chat_id FROM chats WHERE direct_key=?",
                       [&](Stmt& s) { s.Bind(1, direct_key); },
                       +[](const Stmt& s) { return s.U64(0); });
}

Result<std::optional<MessageRow>> Queries::MessageFacts(uint64_t message_id) {
  return One<MessageRow>(
      db_,
      "SELECT message_id, chat_id, sender_id, created_at, file_id, deleted FROM messages WHERE message_id=?1 "
      "UNION ALL SELECT message_id, chat_id, sender_id, created_at, 0, 1 FROM erased_posts WHERE message_id=?1 "
      "LIMIT 1",
      [&](Stmt& s) { s.Bind(1, message_id); },
      +[](const Stmt& s) {
        MessageRow m;
        m.message_id = s.U64(0);
        m.chat_id = s.U64(1);
        m.sender_id = s.U64(2);
        m.created_at = s.Int(3);
        m.file_id = s.U64(4);
        m.deleted = s.Int(5) != 0;
        return m;
      });
}

Result<std::optional<MessageRow>> Queries::Message(uint64_t message_id) {
  auto st = db_.Prepare(std::string("SELECT ") + kMessageCols + ", " + std::string(kSenderCols) +
                        " FROM messages m "
                        "LEFT JOIN users u ON u.user_id = m.sender_id WHERE m.message_id=? "
                        "AND (m.expires_at = 0 OR m.expires_at > ?)");
  if (!st.ok()) return st.status();
  st->Bind(1, message_id).Bind(2, NowMs());
  auto r = st->Step();
  if (!r.ok()) return r.status();
  if (!r.value()) return std::optional<MessageRow>();
  MessageRow m = ReadMessageWithSender(*st);
  if (Status s = FillReactions(m); !s.ok()) return s;
  return std::optional<MessageRow>(std::move(m));
}

Status Queries::FillReactions(MessageRow& m) {
  auto rs = db_.Prepare(
      "SELECT reaction_type, user_id FROM reactions WHERE message_id=? AND removed=0 ORDER BY reaction_type, id");
  if (!rs.ok()) return rs.status();
  rs->Bind(1, m.message_id);
  m.reactions.clear();
  for (;;) {
    auto r = rs->Step();
    if (!r.ok()) return r.status();
    if (!r.value()) break;
    std::string type = rs->Text(0);
    if (m.reactions.empty() || m.reactions.back().reaction_type != type) m.reactions.push_back({type, {}});
    m.reactions.back().users.push_back(rs->U64(1));
  }
  return Status::Ok();
}

Result<std::optional<uint64_t>> Queries::MessageByClientKey(uint64_t sender_id, std::string_view key) {
  return One<uint64_t>(db_, "SELECT message_id FROM messages WHERE sender_id=? AND client_key=?",
                       [&](Stmt& s) { s.Bind(1, sender_id).Bind(2, key); },
                       +[](const Stmt& s) { return s.U64(0); });
}

Result<std::vector<MessageRow>> Queries::History(uint64_t chat_id, uint64_t before_id, int limit, uint64_t max_pos,
                                                 uint64_t viewer) {
  auto st = db_.Prepare(std::string("SELECT ") + kMessageCols + ", " + std::string(kSenderCols) +
                        " FROM messages m "
                        "LEFT JOIN users u ON u.user_id = m.sender_id "
                        "WHERE m.chat_id=? AND m.message_id<? AND m.pos<=? AND (m.expires_at = 0 OR m.expires_at > ?) "
                        "AND NOT EXISTS (SELECT 1 FROM hidden h WHERE h.user_id=?6 AND h.message_id=m.message_id) "
                        "ORDER BY m.message_id DESC LIMIT ?5");
  if (!st.ok()) return st.status();
  constexpr uint64_t kMax = static_cast<uint64_t>(INT64_MAX);
  st->Bind(1, chat_id)
      .Bind(2, before_id ? before_id : kMax)
      .Bind(3, std::min(max_pos, kMax))
      .Bind(4, NowMs())
      .Bind(5, limit)
      .Bind(6, viewer);
  return MessagesWithSenders(*st);
}

Result<std::vector<MessageRow>> Queries::MessagesWithSenders(Stmt& st) {
  std::vector<MessageRow> out;
  for (;;) {
    auto r = st.Step();
    if (!r.ok()) return r.status();
    if (!r.value()) break;
    out.push_back(ReadMessageWithSender(st));
  }
  for (MessageRow& m : out) {
    if (Status s = FillReactions(m); !s.ok()) return s;
  }
  return out;
}

Result<std::vector<MessageRow>> Queries::Thread(uint64_t chat_id, uint64_t parent_id, uint64_t after_id, int limit,
                                                uint64_t max_pos, uint64_t viewer) {
  auto st = db_.Prepare(std::string("SELECT ") + kMessageCols + ", " + std::string(kSenderCols) +
                        " FROM messages m "
                        "LEFT JOIN users u ON u.user_id = m.sender_id "
                        "WHERE m.reply_to=? AND m.chat_id=? AND m.message_id>? AND m.pos<=? "
                        "AND (m.expires_at = 0 OR m.expires_at > ?) "
                        "AND NOT EXISTS (SELECT 1 FROM hidden h WHERE h.user_id=?7 AND h.message_id=m.message_id) "
                        "ORDER BY m.message_id LIMIT ?6");
  if (!st.ok()) return st.status();
  constexpr uint64_t kMax = static_cast<uint64_t>(INT64_MAX);
  st->Bind(1, parent_id)
      .Bind(2, chat_id)
      .Bind(3, after_id)
      .Bind(4, std::min(max_pos, kMax))
      .Bind(5, NowMs())
      .Bind(6, limit)
      .Bind(7, viewer);
  return MessagesWithSenders(*st);
}

Result<std::vector<EnvelopeRow>> Queries::EnvelopesSince(uint64_t user_id, uint64_t cursor, int limit,
                                                         uint64_t max_pos) {
  auto st = db_.Prepare(std::string("SELECT ") + kEnvelopeColumns +
                        " FROM envelopes WHERE pos > ?1 AND pos <= ?4 AND (chat_id IN "
                        "(SELECT chat_id FROM members WHERE user_id=?2) OR (chat_id=0 AND author=?2) OR "
                        "pos IN (SELECT pos FROM system_audience WHERE user_id=?2 AND pos > ?1)) "
                        "ORDER BY pos LIMIT ?3");
  if (!st.ok()) return st.status();
  st->Bind(1, cursor).Bind(2, user_id).Bind(3, limit).Bind(4, max_pos ? max_pos : static_cast<uint64_t>(INT64_MAX));
  std::vector<EnvelopeRow> out;
  for (;;) {
    auto r = st->Step();
    if (!r.ok()) return r.status();
    if (!r.value()) break;
    out.push_back(ReadEnvelope(*st));
  }
  return out;
}

Result<std::vector<EnvelopeRow>> Queries::EnvelopesFrom(std::string_view origin, uint64_t after_seq, int limit) {
  auto st = db_.Prepare(std::string("SELECT ") + kEnvelopeColumns +
                        " FROM envelopes WHERE origin=? AND seq>? ORDER BY seq LIMIT ?");
  if (!st.ok()) return st.status();
  st->Bind(1, origin).Bind(2, after_seq).Bind(3, limit);
  std::vector<EnvelopeRow> out;
  for (;;) {
    auto r = st->Step();
    if (!r.ok()) return r.status();
    if (!r.value()) break;
    out.push_back(ReadEnvelope(*st));
  }
  return out;
}

Result<std::vector<std::tuple<uint64_t, uint64_t, uint64_t>>> Queries::Receipts(uint64_t chat_id, uint64_t viewer) {
  auto st = db_.Prepare(
      "SELECT user_id, CASE WHEN hide THEN max(delivered, read) ELSE delivered END, CASE WHEN hide THEN 0 ELSE read "
      "END "
      "FROM (SELECT m.user_id, COALESCE(r.delivered_up_to, 0) AS delivered, COALESCE(r.read_up_to, 0) AS read, "
      "m.user_id <> ?2 AND EXISTS(SELECT 1 FROM privacy p WHERE p.user_id = m.user_id AND "
      "p.setting = 'read_receipts' AND p.value = 'false') AS hide FROM members m "
      "LEFT JOIN receipts r ON r.chat_id = m.chat_id AND r.user_id = m.user_id WHERE m.chat_id = ?1)");
  if (!st.ok()) return st.status();
  st->Bind(1, chat_id).Bind(2, viewer);
  std::vector<std::tuple<uint64_t, uint64_t, uint64_t>> out;
  for (;;) {
    auto r = st->Step();
    if (!r.ok()) return r.status();
    if (!r.value()) break;
    out.emplace_back(st->U64(0), st->U64(1), st->U64(2));
  }
  return out;
}

Result<std::optional<std::string>> Queries::HeaderHashAt(std::string_view origin, uint64_t seq) {
  return One<std::string>(db_, "SELECT header_hash FROM envelopes WHERE origin=? AND seq=?",
                          [&](Stmt& s) { s.Bind(1, origin).Bind(2, seq); },
                          +[](const Stmt& s) { return s.Blob(0); });
}

Result<uint64_t> Queries::MaxPos() {
  auto st = db_.Prepare("SELECT COALESCE(max(pos), 0) FROM envelopes");
  if (!st.ok()) return st.status();
  auto r = st->Step();
  if (!r.ok()) return r.status();
  return st->U64(0);
}

Result<uint64_t> Queries::CountEnvelopes() {
  auto st = db_.Prepare("SELECT count(*) FROM envelopes");
  if (!st.ok()) return st.status();
  auto r = st->Step();
  if (!r.ok()) return r.status();
  return st->U64(0);
}

Result<VersionVector> Queries::Vector() {
  auto st = db_.Prepare("SELECT origin, max(seq) FROM envelopes GROUP BY origin ORDER BY origin");
  if (!st.ok()) return st.status();
  VersionVector v;
  for (;;) {
    auto r = st->Step();
    if (!r.ok()) return r.status();
    if (!r.value()) break;
    v.emplace_back(st->Text(0), st->U64(1));
  }
  return v;
}

Result<std::vector<UserRow>> Queries::ListUsers(std::string_view relay, std::string_view after_handle, int limit) {
  return All<UserRow>(
      db_,
      std::string("SELECT ") + kUserCols +
          " FROM users WHERE (?1 = '' OR relay = ?1) AND handle > ?2 ORDER BY handle LIMIT ?3",
      [&](Stmt& s) { s.Bind(1, relay).Bind(2, after_handle).Bind(3, limit); }, ReadUser);
}

Result<int64_t> Queries::ActiveDevices(uint64_t user_id, int64_t now_ms) {
  auto n = One<int64_t>(
      db_, "SELECT count(DISTINCT device_id) FROM refresh_tokens WHERE user_id=? AND revoked_at=0 AND expires_at>?",
      [&](Stmt& s) { s.Bind(1, user_id).Bind(2, now_ms); }, +[](const Stmt& s) { return s.Int(0); });
  if (!n.ok()) return n.status();
  return n.value().value_or(0);
}

Result<std::vector<RevocationRow>> Queries::Revocations(int64_t since_ms) {
  return All<RevocationRow>(
      db_, "SELECT user_id, device_id, not_before, at FROM revocations WHERE device_id=0 OR at>=?",
      [&](Stmt& s) { s.Bind(1, since_ms); },
      +[](const Stmt& s) { return RevocationRow{s.U64(0), s.U64(1), s.Int(2), s.Int(3)}; });
}

Result<std::vector<uint64_t>> Queries::DisabledUsers() {
  return All<uint64_t>(
      db_, "SELECT user_id FROM users WHERE disabled=1", [](Stmt&) {}, +[](const Stmt& s) { return s.U64(0); });
}

Result<std::optional<std::string>> Queries::Meta(std::string_view key) {
  return One<std::string>(db_, "SELECT value FROM meta WHERE key=?", [&](Stmt& s) { s.Bind(1, key); },
                          +[](const Stmt& s) { return s.Text(0); });
}

}  // namespace chatd::store
