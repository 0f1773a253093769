// Writer: appends to the log and maintains the views. Core thread only.
#include "store/store.h"
#include "store/views.h"
#include "store/walvfs.h"

namespace chatd::store {

Result<uint64_t> Writer::Append(const crypto::Envelope& env, bool apply_views, uint64_t pos, bool valid) {
  // A delete earlier in this transaction erased this (same-batch) post or edit already.
  const bool erase = !erase_on_append_.empty() && pos != 0 && erase_on_append_.erase(pos) > 0;
  auto hh = crypto::HeaderHash(env);
  auto st = db_.Prepare(
      "INSERT INTO envelopes(origin, seq, id, chat_id, author, device, kind, created_at, deps, "
      "body_hash, sig, header_hash, body, salt, pos, valid) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
  if (!st.ok()) return st.status();
  st->BindOpt(15, pos);  // NULL: the next rowid
  st->Bind(16, valid ? 1 : 0);
  st->Bind(1, env.origin).Bind(2, env.seq).Bind(3, env.id).Bind(4, env.chat_id).Bind(5, env.author)
      .Bind(6, env.device).Bind(7, static_cast<int64_t>(env.kind)).Bind(8, env.created_at)
      .Bind(9, DepsToText(env.deps)).BindBlob(10, env.body_hash.data(), env.body_hash.size())
      .BindBlob(11, env.sig.data(), env.sig.size()).BindBlob(12, hh.data(), hh.size());
  if (env.erased() || erase) {
    st->BindNull(13).BindNull(14);
  } else {
    st->BindBlob(13, env.body.data(), env.body.size()).BindBlob(14, env.salt.data(), env.salt.size());
  }
  Status s = st->Run();
  if (!s.ok()) return s;
  if (pos == 0) pos = static_cast<uint64_t>(sqlite3_last_insert_rowid(db_.raw()));
  if (!env.erased() && !erase) {
    s = ScheduleExpiry(db_, env, pos);
    if (!s.ok()) return s;
  }
  if (apply_views) {
    s = ApplyToViews(db_, env, pos);
    if (!s.ok()) return s;
  }
  return pos;
}

Result<int> Writer::DeferSyncs() {
  int fd = DeferWalSyncs(db_.raw());
  if (fd < 0) return Status(Code::kUnavailable, "the store's WAL cannot defer its syncs");
  return fd;
}

Status Writer::ResumeSyncs() {
  int rc = ResumeWalSyncs(db_.raw());
  if (rc != SQLITE_OK) return IoError(std::string("sqlite: cannot sync the WAL: ") + sqlite3_errstr(rc));
  return Status::Ok();
}

Status Writer::ApplyViews(const crypto::Envelope& env, uint64_t pos) {
  std::vector<uint64_t> erased;
  Status s = ApplyToViews(db_, env, pos, &erased);
  if (!s.ok() || erased.empty()) return s;
  auto logged = MaxPos();
  if (!logged.ok()) return logged.status();
  for (uint64_t p : erased) {
    if (p > *logged) erase_on_append_.insert(p);
  }
  return Status::Ok();
}

Status Writer::PutCredentials(uint64_t user_id, std::string_view email, std::string_view password_hash) {
  auto st = db_.Prepare("INSERT INTO credentials(user_id, email, password_hash) VALUES(?,?,?)");
  if (!st.ok()) return st.status();
  return st->Bind(1, user_id).Bind(2, email).Bind(3, password_hash).Run();
}

Status Writer::PutRefreshToken(std::string_view token_hash, uint64_t user_id, uint64_t device_id,
                               int64_t now_ms, int64_t expires_at_ms) {
  auto st = db_.Prepare(
      "INSERT INTO refresh_tokens(token_hash, user_id, device_id, created_at, expires_at) "
      "VALUES(?,?,?,?,?)");
  if (!st.ok()) return st.status();
  return st->Bind(1, token_hash).Bind(2, user_id).Bind(3, device_id).Bind(4, now_ms)
      .Bind(5, expires_at_ms).Run();
}

Result<bool> Writer::RevokeRefreshToken(std::string_view token_hash, int64_t now_ms) {
  auto st = db_.Prepare("UPDATE refresh_tokens SET revoked_at=? WHERE token_hash=? AND revoked_at=0");
  if (!st.ok()) return st.status();
  Status s = st->Bind(1, now_ms).Bind(2, token_hash).Run();
  if (!s.ok()) return s;
  return db_.Changes() > 0;
}

Status Writer::SetMeta(std::string_view key, std::string_view value) {
  auto st = db_.Prepare("INSERT INTO meta(key, value) VALUES(?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value");
  if (!st.ok()) return st.status();
  return st->Bind(1, key).Bind(2, value).Run();
}

Status Writer::PutUpload(const UploadRow& u) {
  auto st = db_.Prepare(
      "INSERT INTO uploads(upload_id, user_id, chat_id, file_name, mime_type, file_size, chunk_size, created_at, "
      "expires_at) VALUES(?,?,?,?,?,?,?,?,?)");
  if (!st.ok()) return st.status();
  return st->Bind(1, u.upload_id)
      .Bind(2, u.user_id)
      .Bind(3, u.chat_id)
      .Bind(4, u.file_name)
      .Bind(5, u.mime_type)
      .Bind(6, u.file_size)
      .Bind(7, u.chunk_size)
      .Bind(8, u.created_at)
      .Bind(9, u.expires_at)
      .Run();
}

Status Writer::DeleteUpload(uint64_t upload_id) {
  auto st = db_.Prepare("DELETE FROM uploads WHERE upload_id=?");
  if (!st.ok()) return st.status();
  return st->Bind(1, upload_id).Run();
}

Status Writer::RebuildViews() {
  std::string clear;
  for (const char* t : kViewTables) clear += std::string("DELETE FROM ") + t + ";";
  Status s = db_.Exec(clear);
  if (!s.ok()) return s;
  uint64_t after = 0;
  for (;;) {
    auto st = db_.Prepare(std::string("SELECT ") + kEnvelopeColumns +
                          ", valid FROM envelopes WHERE pos > ? ORDER BY pos LIMIT 1000");
    if (!st.ok()) return st.status();
    st->Bind(1, after);
    std::vector<std::pair<EnvelopeRow, bool>> rows;  // and whether it applied when appended
    for (;;) {
      auto r = st->Step();
      if (!r.ok()) return r.status();
      if (!r.value()) break;
      rows.emplace_back(ReadEnvelope(*st), st->Int(kEnvelopeColumnCount) != 0);
    }
    if (rows.empty()) break;
    for (const auto& [row, valid] : rows) {
      s = valid ? ApplyToViews(db_, row.env, row.pos) : Status::Ok();
      if (s.ok()) s = ScheduleExpiry(db_, row.env, row.pos);
      if (!s.ok()) return s;
      after = row.pos;
    }
  }
  return Status::Ok();
}

Result<int> Writer::ExpireDue(int64_t now_ms, int limit) {
  auto due = db_.Prepare(
      "SELECT x.expires_at, x.pos, x.message_id, e.kind FROM expiring x JOIN envelopes e ON e.pos = x.pos "
      "WHERE x.expires_at <= ? ORDER BY x.expires_at LIMIT ?");
  if (!due.ok()) return due.status();
  due->Bind(1, now_ms).Bind(2, limit);
  struct Due {
    int64_t at;
    uint64_t pos, message_id;
    bool tombstone;  // a delete's: its message's tombstone goes
  };
  std::vector<Due> rows;
  for (;;) {
    auto r = due->Step();
    if (!r.ok()) return r.status();
    if (!r.value()) break;
    rows.push_back(
        {due->Int(0), due->U64(1), due->U64(2), due->Int(3) == static_cast<int64_t>(crypto::Kind::kMsgDelete)});
  }
  due->Reset();
  auto erase = db_.Prepare("UPDATE envelopes SET body=NULL, salt=NULL WHERE pos=?");
  // A post's message leaves the view for a stub of its header facts (erased_posts), as a
  // rebuild from the erased log would make it; a tombstone (deleted for everyone) stays.
  auto stub = db_.Prepare(
      "INSERT OR IGNORE INTO erased_posts(message_id, chat_id, sender_id, created_at, pos) "
      "SELECT message_id, chat_id, sender_id, created_at, pos FROM messages WHERE message_id=? AND deleted=0");
  auto drop = db_.Prepare("DELETE FROM messages WHERE message_id=? AND deleted=0");
  auto drop_reactions = db_.Prepare("DELETE FROM reactions WHERE message_id=?");
  auto drop_edits = db_.Prepare("DELETE FROM message_edits WHERE message_id=?");
  // A delete's time: its tombstone becomes the stub a rebuild from the log makes (the post
  // and the delete both erased), and leaves history.
  auto tomb_stub = db_.Prepare(
      "INSERT OR IGNORE INTO erased_posts(message_id, chat_id, sender_id, created_at, pos) "
      "SELECT message_id, chat_id, sender_id, created_at, pos FROM messages WHERE message_id=? AND deleted=1");
  auto drop_tomb = db_.Prepare("DELETE FROM messages WHERE message_id=? AND deleted=1");
  auto done = db_.Prepare("DELETE FROM expiring WHERE expires_at=? AND pos=?");
  for (const auto* p : {&erase, &stub, &drop, &drop_reactions, &drop_edits, &tomb_stub, &drop_tomb, &done}) {
    if (!p->ok()) return p->status();
  }
  for (const Due& d : rows) {
    const auto& [at, pos, message_id, tombstone] = d;
    Status s = erase->Bind(1, pos).Run();
    erase->Reset();
    Result<Stmt>* const post_steps[] = {&stub, &drop, &drop_reactions, &drop_edits};
    Result<Stmt>* const tomb_steps[] = {&tomb_stub, &drop_tomb, nullptr, nullptr};
    for (auto* step : tombstone ? tomb_steps : post_steps) {
      if (!s.ok() || !message_id || !step) break;
      s = (*step)->Bind(1, message_id).Run();
      (*step)->Reset();
    }
    if (s.ok()) s = done->Bind(1, at).Bind(2, pos).Run();
    done->Reset();
    if (!s.ok()) return s;
  }
  return static_cast<int>(rows.size());
}

Result<int64_t> Writer::NextExpiry() {
  auto st = db_.Prepare("SELECT expires_at FROM expiring ORDER BY expires_at LIMIT 1");
  if (!st.ok()) return st.status();
  auto r = st->Step();
  if (!r.ok()) return r.status();
  return r.value() ? st->Int(0) : int64_t{0};
}

}  // namespace chatd::store
