// Schema migrations, applied in order by PRAGMA user_version.
#include <string>
#include <vector>

#include "store/store.h"

namespace chatd::store {
namespace {

// Each entry moves the schema from version i to i+1. Never edit a shipped entry; append.
const std::vector<const char*> kMigrations = {
    // 1: the envelope log, the views derived from it, and local-only tables.
    R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

-- The log: source of truth. pos is the local apply order and the clients' cursor.
CREATE TABLE envelopes(
  pos INTEGER PRIMARY KEY,
  origin TEXT NOT NULL,
  seq INTEGER NOT NULL,
  id INTEGER NOT NULL,
  chat_id INTEGER NOT NULL,
  author INTEGER NOT NULL,
  device TEXT NOT NULL,
  kind INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  deps TEXT NOT NULL,
  body_hash BLOB NOT NULL,
  sig BLOB NOT NULL,
  header_hash BLOB NOT NULL,
  body BLOB,
  salt BLOB,
  UNIQUE(origin, seq));
CREATE INDEX envelopes_chat_pos ON envelopes(chat_id, pos);

-- Views (re-derivable from the log).
CREATE TABLE users(
  user_id INTEGER PRIMARY KEY,
  username TEXT NOT NULL,
  relay TEXT NOT NULL,
  handle TEXT NOT NULL UNIQUE,
  first_name TEXT NOT NULL DEFAULT '',
  last_name TEXT NOT NULL DEFAULT '',
  status_message TEXT NOT NULL DEFAULT '',
  profile_picture_url TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  disabled INTEGER NOT NULL DEFAULT 0);
CREATE TABLE chats(
  chat_id INTEGER PRIMARY KEY,
  chat_type TEXT NOT NULL,
  chat_name TEXT NOT NULL DEFAULT '',
  chat_description TEXT NOT NULL DEFAULT '',
  created_by INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  direct_key TEXT UNIQUE,
  disappearing_seconds INTEGER NOT NULL DEFAULT 0,
  last_message_id INTEGER NOT NULL DEFAULT 0);
CREATE TABLE members(
  chat_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  role TEXT NOT NULL,
  joined_at INTEGER NOT NULL,
  PRIMARY KEY(chat_id, user_id)) WITHOUT ROWID;
CREATE INDEX members_user ON members(user_id, chat_id);
CREATE TABLE messages(
  message_id INTEGER PRIMARY KEY,
  chat_id INTEGER NOT NULL,
  sender_id INTEGER NOT NULL,
  message_type TEXT NOT NULL,
  content TEXT NOT NULL,
  reply_to INTEGER NOT NULL DEFAULT 0,
  file_id INTEGER NOT NULL DEFAULT 0,
  client_key TEXT,
  created_at INTEGER NOT NULL,
  edit_id INTEGER NOT NULL DEFAULT 0,
  edited_at INTEGER NOT NULL DEFAULT 0,
  deleted INTEGER NOT NULL DEFAULT 0,
  pos INTEGER NOT NULL);
CREATE INDEX messages_chat ON messages(chat_id, message_id);
CREATE UNIQUE INDEX messages_client_key ON messages(sender_id, client_key) WHERE client_key IS NOT NULL;
CREATE TABLE reactions(
  message_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  reaction_type TEXT NOT NULL,
  id INTEGER NOT NULL,
  PRIMARY KEY(message_id, user_id, reaction_type)) WITHOUT ROWID;
CREATE TABLE receipts(
  chat_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  delivered_up_to INTEGER NOT NULL DEFAULT 0,
  read_up_to INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(chat_id, user_id)) WITHOUT ROWID;

-- Local only: never replicated.
CREATE TABLE credentials(
  user_id INTEGER PRIMARY KEY,
  email TEXT NOT NULL UNIQUE COLLATE NOCASE,
  password_hash TEXT NOT NULL);
CREATE TABLE refresh_tokens(
  token_hash TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL,
  device_id INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  revoked_at INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
CREATE INDEX refresh_tokens_user ON refresh_tokens(user_id);
)sql",
    // 2: membership history (views and causal validity independent of arrival order),
    // reaction tombstones (last writer wins by envelope id).
    R"sql(
CREATE TABLE member_events(
  chat_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  id INTEGER NOT NULL,
  origin TEXT NOT NULL,
  seq INTEGER NOT NULL,
  op TEXT NOT NULL,
  role TEXT NOT NULL DEFAULT '',
  at INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(chat_id, user_id, id)) WITHOUT ROWID;
INSERT INTO member_events(chat_id, user_id, id, origin, seq, op, role, at)
  SELECT chat_id, user_id, 0, '', 0, 'add', role, joined_at FROM members;
ALTER TABLE reactions ADD COLUMN removed INTEGER NOT NULL DEFAULT 0;
)sql",
    // 3: token revocations (a view of session_revoke and user_disable envelopes): tokens of
    // user_id issued before not_before (ms) are refused; device_id 0 means every device.
    // `at` is the newest revoking envelope's created_at (device rows are kept in memory
    // only while a token they refuse can still be unexpired).
    R"sql(
CREATE TABLE revocations(
  user_id INTEGER NOT NULL,
  device_id INTEGER NOT NULL,
  not_before INTEGER NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY(user_id, device_id)) WITHOUT ROWID;
)sql",
    // 4: disappearing messages. A msg_post or msg_edit whose body has `expires_at` (ms)
    // carries text that every relay erases at that time: `expiring` lists those envelopes
    // by due time (message_id: the message a post created, whose view row goes too; 0 for
    // an edit). messages.expires_at hides a due message from reads until it is erased.
    R"sql(
ALTER TABLE messages ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
CREATE TABLE expiring(
  expires_at INTEGER NOT NULL,
  pos INTEGER NOT NULL,
  message_id INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(expires_at, pos)) WITHOUT ROWID;
)sql",
    // 5: a chat's name, description and disappearing timer are last-writer-wins by the id
    // of the chat_update that set them, so concurrent updates on two relays end the same
    // whatever order they arrive in (0: as created).
    R"sql(
ALTER TABLE chats ADD COLUMN name_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chats ADD COLUMN description_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chats ADD COLUMN timer_id INTEGER NOT NULL DEFAULT 0;
)sql",
    // 6: threads, forwarding, blocks, contacts, messages hidden for one user ("delete for
    // me"; views of their envelopes) and reports (local only). block_events is the
    // history of each (blocker, blocked) pair: the newest event by envelope id decides,
    // and validity reads it as of an envelope's causal past. contact_requests.status and contacts.active are
    // last-writer-wins by
    // the id of the envelope that set them (status_id, contacts.id).
    R"sql(
CREATE INDEX messages_reply ON messages(reply_to, message_id) WHERE reply_to <> 0;
ALTER TABLE messages ADD COLUMN forwarded_chat_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN forwarded_message_id INTEGER NOT NULL DEFAULT 0;
CREATE TABLE block_events(
  blocker INTEGER NOT NULL,
  blocked INTEGER NOT NULL,
  id INTEGER NOT NULL,
  origin TEXT NOT NULL,
  seq INTEGER NOT NULL,
  op TEXT NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY(blocker, blocked, id)) WITHOUT ROWID;
CREATE TABLE contact_requests(
  request_id INTEGER PRIMARY KEY,
  from_user INTEGER NOT NULL,
  to_user INTEGER NOT NULL,
  origin TEXT NOT NULL,
  seq INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending',
  status_id INTEGER NOT NULL DEFAULT 0);
CREATE INDEX contact_requests_to ON contact_requests(to_user, status);
CREATE INDEX contact_requests_from ON contact_requests(from_user, status);
CREATE TABLE contacts(
  user_a INTEGER NOT NULL,
  user_b INTEGER NOT NULL,
  id INTEGER NOT NULL,
  active INTEGER NOT NULL,
  since INTEGER NOT NULL,
  PRIMARY KEY(user_a, user_b)) WITHOUT ROWID;
CREATE INDEX contacts_b ON contacts(user_b, user_a);
CREATE TABLE reports(
  report_id INTEGER PRIMARY KEY,
  reporter INTEGER NOT NULL,
  user_id INTEGER NOT NULL DEFAULT 0,
  chat_id INTEGER NOT NULL DEFAULT 0,
  message_id INTEGER NOT NULL DEFAULT 0,
  reason TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  status TEXT NOT NULL DEFAULT 'open',
  resolved_at INTEGER NOT NULL DEFAULT 0,
  resolution TEXT NOT NULL DEFAULT '');
CREATE INDEX reports_status ON reports(status, report_id);
CREATE TABLE hidden(
  user_id INTEGER NOT NULL,
  message_id INTEGER NOT NULL,
  chat_id INTEGER NOT NULL,
  PRIMARY KEY(user_id, message_id)) WITHOUT ROWID;
CREATE INDEX reports_reporter ON reports(reporter, created_at);
)sql",
    // 7: files. `files` is the view of file_create envelopes (metadata; the blob itself is
    // DATA/blobs/<2 hex>/<sha256>). `uploads` is local only: resumable uploads in progress,
    // whose chunks are files under DATA/uploads/<upload_id>/, dropped at expires_at.
    // messages_file: who can read a file also through a forwarded copy.
    R"sql(
CREATE TABLE files(
  file_id INTEGER PRIMARY KEY,
  chat_id INTEGER NOT NULL,
  uploader_id INTEGER NOT NULL,
  origin TEXT NOT NULL,
  original_filename TEXT NOT NULL,
  mime_type TEXT NOT NULL,
  file_type TEXT NOT NULL,
  file_size INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  created_at INTEGER NOT NULL);
CREATE INDEX files_chat ON files(chat_id, file_id);
CREATE INDEX files_sha256 ON files(sha256);
CREATE TABLE uploads(
  upload_id INTEGER PRIMARY KEY,
  user_id INTEGER NOT NULL,
  chat_id INTEGER NOT NULL,
  file_name TEXT NOT NULL,
  mime_type TEXT NOT NULL,
  file_size INTEGER NOT NULL,
  chunk_size INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL);
CREATE INDEX uploads_expiry ON uploads(expires_at);
CREATE INDEX messages_file ON messages(file_id) WHERE file_id <> 0;
)sql",
    // 8: scheduled messages (local only: the relay where they were scheduled sends them).
    // `request` is the send as JSON (message_type, content, reply_to_message_id, file_id,
    // forward_from); status pending → sent (message_id) | failed (error) | cancelled.
    R"sql(
CREATE TABLE scheduled(
  scheduled_id INTEGER PRIMARY KEY,
  user_id INTEGER NOT NULL,
  device_id INTEGER NOT NULL,
  chat_id INTEGER NOT NULL,
  send_at INTEGER NOT NULL,
  request TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending',
  message_id INTEGER NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  done_at INTEGER NOT NULL DEFAULT 0);
CREATE INDEX scheduled_due ON scheduled(status, send_at);
CREATE INDEX scheduled_user ON scheduled(user_id, send_at);
)sql",
    // 9: whether an envelope applied to the views (0: kept in the log as signed but invalid
    // against its causal past), so that a rebuild of the views skips the same ones. Rows
    // from before this schema say 1.
    R"sql(
ALTER TABLE envelopes ADD COLUMN valid INTEGER NOT NULL DEFAULT 1;
)sql",
    // 10: delete for everyone erases the text (DESIGN.md §4, redaction). `message_edits`
    // lists the log position of every edit applied to a message still in the view, so that a
    // delete can erase the edits' bodies too. `erased_posts` keeps the header facts of a post
    // whose body is gone (disappeared, or erased before this relay got it), so that a delete
    // can still leave its tombstone and peers' edits and deletes still find the message.
    // A tombstone is derived from those header facts only, so that a rebuild from the erased
    // log makes the same row. Deletes made before this schema are erased here, the same way.
    R"sql(
CREATE TABLE message_edits(
  message_id INTEGER NOT NULL,
  pos INTEGER NOT NULL,
  PRIMARY KEY(message_id, pos)) WITHOUT ROWID;
CREATE TABLE erased_posts(
  message_id INTEGER PRIMARY KEY,
  chat_id INTEGER NOT NULL,
  sender_id INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  pos INTEGER NOT NULL);
INSERT OR IGNORE INTO message_edits(message_id, pos)
  SELECT CAST(json_extract(CAST(e.body AS TEXT), '$.message_id') AS INTEGER), e.pos FROM envelopes e
  WHERE e.kind = 21 AND e.valid = 1 AND e.body IS NOT NULL;
INSERT OR IGNORE INTO erased_posts(message_id, chat_id, sender_id, created_at, pos)
  SELECT id, chat_id, author, created_at, pos FROM envelopes
  WHERE kind = 20 AND valid = 1 AND body IS NULL AND id NOT IN (SELECT message_id FROM messages);
UPDATE envelopes SET body = NULL, salt = NULL WHERE pos IN (
  SELECT pos FROM messages WHERE deleted = 1
  UNION ALL SELECT e.pos FROM message_edits e JOIN messages m ON m.message_id = e.message_id WHERE m.deleted = 1);
DELETE FROM message_edits WHERE message_id NOT IN (SELECT message_id FROM messages WHERE deleted = 0);
DELETE FROM reactions WHERE message_id IN (SELECT message_id FROM messages WHERE deleted = 1);
UPDATE messages SET message_type = 'text', content = '', reply_to = 0, file_id = 0, client_key = NULL, edit_id = 0,
  edited_at = 0, expires_at = 0, forwarded_chat_id = 0, forwarded_message_id = 0 WHERE deleted = 1;
)sql",
    // 11: end-to-end encryption. `device_keys` is the view of the device_keys envelopes
    // (kind 5): per (user, device) the envelope with the highest id decides; removed = 1
    // after a DELETE. Keys are canonical standard base64. `prekeys` is local: the one-time
    // prekeys this relay (the user's home) hands out, each at most once (claimed_at > 0
    // keeps the key id taken), under the identity key they were published with.
    // messages.encrypted: an end-to-end encrypted message (opaque content, never indexed).
    R"sql(
CREATE TABLE device_keys(
  user_id INTEGER NOT NULL,
  device_id INTEGER NOT NULL,
  id INTEGER NOT NULL,
  origin TEXT NOT NULL,
  identity_key TEXT NOT NULL,
  spk_id INTEGER NOT NULL,
  spk TEXT NOT NULL,
  spk_sig TEXT NOT NULL,
  removed INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY(user_id, device_id)) WITHOUT ROWID;
CREATE TABLE prekeys(
  user_id INTEGER NOT NULL,
  device_id INTEGER NOT NULL,
  key_id INTEGER NOT NULL,
  identity_key TEXT NOT NULL,
  public_key TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  claimed_at INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(user_id, device_id, key_id)) WITHOUT ROWID;
ALTER TABLE messages ADD COLUMN encrypted INTEGER NOT NULL DEFAULT 0;
)sql",
    // 12: the seq of each file's file_create (with files.origin: whether a post that names
    // the file has it in its causal past).
    R"sql(
ALTER TABLE files ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
UPDATE files SET seq = e.seq FROM envelopes e WHERE e.kind = 40 AND e.id = files.file_id AND e.origin = files.origin;
)sql",
    // 13: privacy settings, the view of the privacy envelopes (kind 35): per (user,
    // setting) the envelope with the highest id decides, whatever order they arrive in.
    // Settings: last_seen, profile_photo, about, groups ("everyone"|"contacts"|"nobody")
    // and read_receipts ("true"|"false"); a missing row is the default (everyone, true).
    R"sql(
CREATE TABLE privacy(
  user_id INTEGER NOT NULL,
  setting TEXT NOT NULL,
  value TEXT NOT NULL,
  id INTEGER NOT NULL,
  PRIMARY KEY(user_id, setting)) WITHOUT ROWID;
)sql",
    // 14: profile fields last-writer-wins by envelope id (as chat fields are): the id of
    // the user_profile envelope that set each field. The backfill re-derives every field
    // from its newest valid envelope, which the apply order may not have left in place.
    R"sql(
CREATE TABLE profile_fields(
  user_id INTEGER NOT NULL,
  field TEXT NOT NULL,
  id INTEGER NOT NULL,
  PRIMARY KEY(user_id, field)) WITHOUT ROWID;
INSERT INTO profile_fields(user_id, field, id)
  SELECT e.author, f.name, max(e.id) FROM envelopes e
  JOIN (SELECT 'first_name' AS name UNION ALL SELECT 'last_name' UNION ALL SELECT 'status_message'
        UNION ALL SELECT 'profile_picture_url') f
  WHERE e.kind = 2 AND e.valid = 1 AND e.body IS NOT NULL AND json_valid(e.body)
    AND json_type(e.body, '$.' || f.name) = 'text'
  GROUP BY e.author, f.name;
UPDATE users SET
  first_name = COALESCE((SELECT json_extract(e.body, '$.first_name') FROM profile_fields p JOIN envelopes e
    ON e.id = p.id AND e.kind = 2 WHERE p.user_id = users.user_id AND p.field = 'first_name'), first_name),
  last_name = COALESCE((SELECT json_extract(e.body, '$.last_name') FROM profile_fields p JOIN envelopes e
    ON e.id = p.id AND e.kind = 2 WHERE p.user_id = users.user_id AND p.field = 'last_name'), last_name),
  status_message = COALESCE((SELECT json_extract(e.body, '$.status_message') FROM profile_fields p JOIN envelopes e
    ON e.id = p.id AND e.kind = 2 WHERE p.user_id = users.user_id AND p.field = 'status_message'), status_message),
  profile_picture_url = COALESCE((SELECT json_extract(e.body, '$.profile_picture_url') FROM profile_fields p
    JOIN envelopes e ON e.id = p.id AND e.kind = 2 WHERE p.user_id = users.user_id AND p.field = 'profile_picture_url'),
    profile_picture_url);
)sql",
    // 15: system_audience: the other user of a system-stream envelope (a contact request,
    // accept, decline or removal), so that sync replays it to them as well as to its author.
    R"sql(
CREATE TABLE system_audience(
  user_id INTEGER NOT NULL,
  pos INTEGER NOT NULL,
  PRIMARY KEY(user_id, pos)) WITHOUT ROWID;
INSERT OR IGNORE INTO system_audience(user_id, pos)
  SELECT CAST(json_extract(body, '$.user_id') AS INTEGER), pos FROM envelopes
  WHERE kind IN (30, 32) AND valid = 1 AND body IS NOT NULL AND json_valid(body)
    AND json_extract(body, '$.user_id') IS NOT NULL;
INSERT OR IGNORE INTO system_audience(user_id, pos)
  SELECT CASE WHEN e.author = r.from_user THEN r.to_user ELSE r.from_user END, e.pos
  FROM envelopes e JOIN contact_requests r ON r.request_id = CAST(json_extract(e.body, '$.request_id') AS INTEGER)
  WHERE e.kind IN (31, 32) AND e.valid = 1 AND e.body IS NOT NULL AND json_valid(e.body)
    AND json_extract(e.body, '$.request_id') IS NOT NULL;
)sql",
    // 16: file_sent: files that some post has shown (local, not a view: a post erased
    // before this relay saw it never says which file it showed). A file that was sent
    // stops being readable once no message shows it any more (deleted for everyone, or
    // disappeared); one never sent, api.unsent_file_ttl after its upload.
    R"sql(
CREATE TABLE file_sent(file_id INTEGER PRIMARY KEY);
INSERT OR IGNORE INTO file_sent(file_id) SELECT file_id FROM messages WHERE file_id <> 0;
)sql",
    // 17: last_seen (local only, not a view): when each of this relay's users was last
    // seen here (ms), so that presence shows it after a restart. Never replicated.
    R"sql(
CREATE TABLE last_seen(
  user_id INTEGER PRIMARY KEY,
  at INTEGER NOT NULL);
)sql",
};

}  // namespace

int SchemaVersion() { return static_cast<int>(kMigrations.size()); }

Status Migrate(Db& db) { return ApplyMigrations(db, kMigrations.data(), SchemaVersion(), "store"); }

Status ApplyMigrations(Db& db, const char* const* steps, int count, std::string_view what) {
  auto st = db.Prepare("PRAGMA user_version");
  if (!st.ok()) return st.status();
  auto row = st->Step();
  if (!row.ok()) return row.status();
  int version = static_cast<int>(st->Int(0));
  if (version > count) {
    return IoError(std::string(what) + " schema version " + std::to_string(version) +
                   " is newer than this chatd (" + std::to_string(count) + ")");
  }
  for (int v = version; v < count; ++v) {
    std::string sql = std::string("BEGIN IMMEDIATE;") + steps[v] + "PRAGMA user_version=" + std::to_string(v + 1) +
                      ";COMMIT;";
    Status s = db.Exec(sql);
    if (!s.ok()) {
      (void)db.Exec("ROLLBACK");
      return IoError("migration of the " + std::string(what) + " to schema " + std::to_string(v + 1) +
                     " failed: " + s.message());
    }
  }
  return Status::Ok();
}

std::string DepsToText(const std::vector<std::pair<std::string, uint64_t>>& deps) {
  std::string out;
  for (const auto& [name, seq] : deps) {
    if (!out.empty()) out.push_back(',');
    out += name;
    out.push_back('=');
    out += std::to_string(seq);
  }
  return out;
}

bool DepsFromText(std::string_view text, std::vector<std::pair<std::string, uint64_t>>* deps) {
  deps->clear();
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) return false;
    uint64_t seq = 0;
    for (char c : item.substr(eq + 1)) {
      if (c < '0' || c > '9') return false;
      seq = seq * 10 + static_cast<uint64_t>(c - '0');
    }
    deps->emplace_back(std::string(item.substr(0, eq)), seq);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return true;
}

}  // namespace chatd::store
