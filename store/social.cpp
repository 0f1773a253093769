// Blocks, contacts and reports: queries (shared by the writer and the readers) and the
// writer's local report rows. The views themselves are derived in store/views.cpp.
#include "store/query_util.h"
#include "store/store.h"

namespace chatd::store {
namespace {

constexpr const char* kRequestCols = "request_id, from_user, to_user, origin, seq, created_at, status";

ContactRequestRow ReadRequest(const Stmt& st) {
  ContactRequestRow r;
  r.request_id = st.U64(0);
  r.from_user = st.U64(1);
  r.to_user = st.U64(2);
  r.origin = st.Text(3);
  r.seq = st.U64(4);
  r.created_at = st.Int(5);
  r.status = st.Text(6);
  return r;
}

constexpr const char* kReportCols =
    "report_id, reporter, user_id, chat_id, message_id, reason, created_at, status, resolved_at, resolution";

ReportRow ReadReport(const Stmt& st) {
  ReportRow r;
  r.report_id = st.U64(0);
  r.reporter = st.U64(1);
  r.user_id = st.U64(2);
  r.chat_id = st.U64(3);
  r.message_id = st.U64(4);
  r.reason = st.Text(5);
  r.created_at = st.Int(6);
  r.status = st.Text(7);
  r.resolved_at = st.Int(8);
  r.resolution = st.Text(9);
  return r;
}

constexpr const char* kScheduledCols =
    "scheduled_id, user_id, device_id, chat_id, send_at, request, created_at, status, message_id, error, done_at";

ScheduledRow ReadScheduled(const Stmt& st) {
  ScheduledRow r;
  r.scheduled_id = st.U64(0);
  r.user_id = st.U64(1);
  r.device_id = st.U64(2);
  r.chat_id = st.U64(3);
  r.send_at = st.Int(4);
  r.request = st.Text(5);
  r.created_at = st.Int(6);
  r.status = st.Text(7);
  r.message_id = st.U64(8);
  r.error = st.Text(9);
  r.done_at = st.Int(10);
  return r;
}

int64_t CountOf(const Stmt& s) { return s.Int(0); }

}  // namespace

Result<std::vector<BlockEventRow>> Queries::BlockEvents(uint64_t blocker, uint64_t blocked) {
  return All<BlockEventRow>(
      db_, "SELECT id, origin, seq, op FROM block_events WHERE blocker=? AND blocked=? ORDER BY id DESC",
      [&](Stmt& s) { s.Bind(1, blocker).Bind(2, blocked); },
      +[](const Stmt& s) {
        return BlockEventRow{s.U64(0), s.Text(1), s.U64(2), s.TextView(3) == "block"};
      });
}

Result<bool> Queries::Blocked(uint64_t blocker, uint64_t blocked) {
  auto op = One<std::string>(
      db_, "SELECT op FROM block_events WHERE blocker=? AND blocked=? ORDER BY id DESC LIMIT 1",
      [&](Stmt& s) { s.Bind(1, blocker).Bind(2, blocked); }, +[](const Stmt& s) { return s.Text(0); });
  if (!op.ok()) return op.status();
  return op.value() && *op.value() == "block";
}

Result<std::vector<BlockRow>> Queries::BlocksOf(uint64_t blocker) {
  // The newest event of each pair decides; `since` is when that block was made.
  return All<BlockRow>(
      db_,
      "SELECT blocked, at FROM block_events e WHERE blocker=?1 AND op='block' AND id = "
      "(SELECT max(id) FROM block_events WHERE blocker=?1 AND blocked=e.blocked) ORDER BY at",
      [&](Stmt& s) { s.Bind(1, blocker); },
      +[](const Stmt& s) {
        return BlockRow{s.U64(0), s.Int(1)};
      });
}

Result<std::optional<ContactRequestRow>> Queries::ContactRequest(uint64_t request_id) {
  return One<ContactRequestRow>(
      db_, std::string("SELECT ") + kRequestCols + " FROM contact_requests WHERE request_id=?",
      [&](Stmt& s) { s.Bind(1, request_id); }, &ReadRequest);
}

Result<std::optional<ContactRequestRow>> Queries::PendingRequest(uint64_t from_user, uint64_t to_user) {
  return One<ContactRequestRow>(
      db_,
      std::string("SELECT ") + kRequestCols +
          " FROM contact_requests WHERE from_user=? AND to_user=? AND status='pending' ORDER BY request_id LIMIT 1",
      [&](Stmt& s) { s.Bind(1, from_user).Bind(2, to_user); }, &ReadRequest);
}

Result<std::vector<ContactRequestRow>> Queries::PendingRequestsOf(uint64_t user_id) {
  return All<ContactRequestRow>(
      db_,
      std::string("SELECT ") + kRequestCols +
          " FROM contact_requests WHERE status='pending' AND (to_user=?1 OR from_user=?1) "
          "ORDER BY request_id",
      [&](Stmt& s) { s.Bind(1, user_id); }, &ReadRequest);
}

Result<std::vector<ContactRow>> Queries::ContactsOf(uint64_t user_id) {
  return All<ContactRow>(
      db_,
      "SELECT user_b, since FROM contacts WHERE user_a=?1 AND active=1 UNION ALL "
      "SELECT user_a, since FROM contacts WHERE user_b=?1 AND active=1 ORDER BY 2",
      [&](Stmt& s) { s.Bind(1, user_id); },
      +[](const Stmt& s) {
        return ContactRow{s.U64(0), s.Int(1)};
      });
}

Result<std::vector<uint64_t>> Queries::PresenceAudience(uint64_t user_id) {
  return All<uint64_t>(
      db_,
      "SELECT m2.user_id FROM members m1 JOIN members m2 ON m2.chat_id = m1.chat_id "
      "WHERE m1.user_id = ?1 AND m2.user_id <> ?1 "
      "UNION SELECT user_b FROM contacts WHERE user_a = ?1 AND active = 1 "
      "UNION SELECT user_a FROM contacts WHERE user_b = ?1 AND active = 1",
      [&](Stmt& s) { s.Bind(1, user_id); }, +[](const Stmt& s) { return s.U64(0); });
}

Result<bool> Queries::IsContact(uint64_t a, uint64_t b) {
  auto r = One<int64_t>(
      db_, "SELECT active FROM contacts WHERE user_a=? AND user_b=?",
      [&](Stmt& s) { s.Bind(1, std::min(a, b)).Bind(2, std::max(a, b)); }, +[](const Stmt& s) { return s.Int(0); });
  if (!r.ok()) return r.status();
  return r.value() && *r.value() == 1;
}

Result<bool> Queries::Hidden(uint64_t user_id, uint64_t message_id) {
  auto r = One<int64_t>(
      db_, "SELECT 1 FROM hidden WHERE user_id=? AND message_id=?",
      [&](Stmt& s) { s.Bind(1, user_id).Bind(2, message_id); }, +[](const Stmt& s) { return s.Int(0); });
  if (!r.ok()) return r.status();
  return r.value().has_value();
}

Result<std::vector<ReportRow>> Queries::Reports(std::string_view status, uint64_t after_id, int limit) {
  return All<ReportRow>(
      db_,
      std::string("SELECT ") + kReportCols +
          " FROM reports WHERE (?1 = '' OR status = ?1) AND report_id > ?2 ORDER BY report_id LIMIT ?3",
      [&](Stmt& s) { s.Bind(1, status).Bind(2, after_id).Bind(3, limit); }, &ReadReport);
}

Result<std::optional<ReportRow>> Queries::Report(uint64_t report_id) {
  return One<ReportRow>(
      db_, std::string("SELECT ") + kReportCols + " FROM reports WHERE report_id=?",
      [&](Stmt& s) { s.Bind(1, report_id); }, &ReadReport);
}

Result<int64_t> Queries::ReportsFiledSince(uint64_t reporter, int64_t since_ms) {
  auto n = One<int64_t>(
      db_, "SELECT count(*) FROM reports WHERE reporter=? AND created_at>=?",
      [&](Stmt& s) { s.Bind(1, reporter).Bind(2, since_ms); }, +[](const Stmt& s) { return s.Int(0); });
  if (!n.ok()) return n.status();
  return n.value().value_or(0);
}

Result<uint64_t> Writer::PutReport(const ReportRow& r) {
  auto st = db_.Prepare(
      "INSERT INTO reports(report_id, reporter, user_id, chat_id, message_id, reason, created_at) "
      "VALUES(?,?,?,?,?,?,?)");
  if (!st.ok()) return st.status();
  Status s = st->BindOpt(1, r.report_id)
                 .Bind(2, r.reporter)
                 .Bind(3, r.user_id)
                 .Bind(4, r.chat_id)
                 .Bind(5, r.message_id)
                 .Bind(6, r.reason)
                 .Bind(7, r.created_at)
                 .Run();
  if (!s.ok()) return s;
  return r.report_id ? r.report_id : static_cast<uint64_t>(sqlite3_last_insert_rowid(db_.raw()));
}

Result<bool> Writer::ResolveReport(uint64_t report_id, std::string_view resolution, int64_t now_ms) {
  auto st = db_.Prepare(
      "UPDATE reports SET status='resolved', resolved_at=?, resolution=? WHERE report_id=? AND status='open'");
  if (!st.ok()) return st.status();
  Status s = st->Bind(1, now_ms).Bind(2, resolution).Bind(3, report_id).Run();
  if (!s.ok()) return s;
  return db_.Changes() > 0;
}

Result<std::vector<ScheduledRow>> Queries::ScheduledOf(uint64_t user_id) {
  return All<ScheduledRow>(
      db_,
      std::string("SELECT ") + kScheduledCols +
          " FROM scheduled WHERE user_id=? AND status<>'cancelled' ORDER BY send_at, scheduled_id",
      [&](Stmt& s) { s.Bind(1, user_id); }, &ReadScheduled);
}

Result<std::optional<ScheduledRow>> Queries::Scheduled(uint64_t scheduled_id) {
  return One<ScheduledRow>(
      db_, std::string("SELECT ") + kScheduledCols + " FROM scheduled WHERE scheduled_id=?",
      [&](Stmt& s) { s.Bind(1, scheduled_id); }, &ReadScheduled);
}

Result<int64_t> Queries::PendingScheduledOf(uint64_t user_id) {
  auto n = One<int64_t>(
      db_, "SELECT count(*) FROM scheduled WHERE user_id=? AND status='pending'", [&](Stmt& s) { s.Bind(1, user_id); },
      &CountOf);
  if (!n.ok()) return n.status();
  return n.value().value_or(0);
}

Result<std::vector<ScheduledRow>> Queries::DueScheduled(int64_t now_ms, int limit) {
  return All<ScheduledRow>(
      db_,
      std::string("SELECT ") + kScheduledCols +
          " FROM scheduled WHERE status='pending' AND send_at<=? ORDER BY send_at, scheduled_id "
          "LIMIT ?",
      [&](Stmt& s) { s.Bind(1, now_ms).Bind(2, limit); }, &ReadScheduled);
}

Result<int64_t> Queries::NextScheduled() {
  auto n = One<int64_t>(
      db_, "SELECT coalesce(min(send_at), 0) FROM scheduled WHERE status='pending'", [](Stmt&) {}, &CountOf);
  if (!n.ok()) return n.status();
  return n.value().value_or(0);
}

Status Writer::PutScheduled(const ScheduledRow& r) {
  auto st = db_.Prepare(
      "INSERT INTO scheduled(scheduled_id, user_id, device_id, chat_id, send_at, request, created_at) "
      "VALUES(?,?,?,?,?,?,?)");
  if (!st.ok()) return st.status();
  return st->Bind(1, r.scheduled_id)
      .Bind(2, r.user_id)
      .Bind(3, r.device_id)
      .Bind(4, r.chat_id)
      .Bind(5, r.send_at)
      .Bind(6, r.request)
      .Bind(7, r.created_at)
      .Run();
}

Result<bool> Writer::FinishScheduled(uint64_t scheduled_id, std::string_view status, uint64_t message_id,
                                     std::string_view error, int64_t now_ms) {
  auto st = db_.Prepare(
      "UPDATE scheduled SET status=?, message_id=?, error=?, done_at=? WHERE scheduled_id=? AND status='pending'");
  if (!st.ok()) return st.status();
  Status s = st->Bind(1, status).Bind(2, message_id).Bind(3, error).Bind(4, now_ms).Bind(5, scheduled_id).Run();
  if (!s.ok()) return s;
  return db_.Changes() > 0;
}

Status Writer::PruneScheduled(int64_t before_ms) {
  auto st = db_.Prepare("DELETE FROM scheduled WHERE status<>'pending' AND done_at<?");
  if (!st.ok()) return st.status();
  return st->Bind(1, before_ms).Run();
}

}  // namespace chatd::store
