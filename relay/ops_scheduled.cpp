// Scheduled messages (core thread): `POST /chats/{id}/messages` with `send_at`. A schedule
// is checked as a send would be (membership, blocks, file, reply, forwarded source), then
// kept in the local `scheduled` table; the core's once-a-second timer sends what is due
// through OpSend, in the scheduler's name and device, with the client key "sched:<id>"
// (so a row sent in a batch that failed to commit is sent once, on the next tick). If
// the send is refused by then (the user left the chat, a block, the file is gone), the
// row is marked failed with the reason. Scheduled messages stay on the relay where they
// were scheduled until sent; the sent message replicates like any other.
#include "base/json.h"
#include "base/log.h"
#include "relay/core.h"
#include "relay/events.h"

namespace chatd {

namespace {

constexpr int64_t kMaxAheadMs = 365LL * 86400 * 1000;
constexpr int64_t kMaxPendingPerUser = 100;
constexpr int64_t kKeepFinishedMs = 7LL * 86400 * 1000;  // sent/failed rows stay listed this long

std::string RequestJson(const SendRequest& req) {
  json::JsonWriter w;
  w.BeginObject();
  w.Key("message_type").Str(req.message_type).Key("content").Str(req.content);
  if (req.reply_to) w.Key("reply_to_message_id").Id(req.reply_to);
  if (req.file_id) w.Key("file_id").Id(req.file_id);
  if (req.encrypted) w.Key("encrypted").Bool(true);
  if (req.forward_message_id) {
    w.Key("forward_from").BeginObject().Key("chat_id").Id(req.forward_chat_id);
    w.Key("message_id").Id(req.forward_message_id).EndObject();
  }
  if (!req.client_key.empty()) w.Key("client_key").Str(req.client_key);
  w.EndObject();
  return w.Take();
}

bool RequestFromJson(const std::string& text, SendRequest* req) {
  json::Doc doc;
  if (!json::Parse(text, &doc).ok() || !doc.IsObject()) return false;
  auto type = json::GetString(doc, "message_type", 16);
  auto content = json::GetString(doc, "content", SIZE_MAX);
  if (!type.ok() || !content.ok()) return false;
  req->message_type = std::string(*type);
  req->content = std::string(*content);
  auto reply = json::GetOptId(doc, "reply_to_message_id");
  auto file = json::GetOptId(doc, "file_id");
  if (!reply.ok() || !file.ok()) return false;
  req->reply_to = reply.value().value_or(0);
  req->file_id = file.value().value_or(0);
  auto key = json::GetOptString(doc, "client_key", 256);
  if (key.ok() && key.value()) req->client_key = std::string(**key);
  if (!events::ReadForwardFrom(doc, &req->forward_chat_id, &req->forward_message_id).ok()) return false;
  if (!events::ReadEncrypted(doc, &req->encrypted).ok()) return false;
  return true;
}

}  // namespace

Result<store::ScheduledRow> Core::OpSchedule(const Actor& actor, const SendRequest& req, int64_t send_at) {
  auto& w = store_.writer();
  const int64_t now = clock_->NowMs();
  if (send_at <= now) return BadRequest("field 'send_at' must be in the future");
  if (send_at - now > kMaxAheadMs) return BadRequest("field 'send_at' is more than 365 days ahead");
  if (Status s = CheckSendBasics(actor, req); !s.ok()) return s;
  auto resolved = ResolveSend(actor, req, now);
  if (!resolved.ok()) return resolved.status();
  auto pending = w.PendingScheduledOf(actor.user_id);
  if (!pending.ok()) return pending.status();
  if (*pending >= kMaxPendingPerUser) {
    return Status(Code::kConflict,
                  "at most " + std::to_string(kMaxPendingPerUser) + " scheduled messages may wait at once",
                  "too_many_scheduled");
  }
  store::ScheduledRow row;
  row.scheduled_id = NewId();
  row.user_id = actor.user_id;
  row.device_id = actor.device_id;
  row.chat_id = req.chat_id;
  row.send_at = send_at;
  row.request = RequestJson(req);
  row.created_at = now;
  row.status = "pending";
  if (Status s = w.PutScheduled(row); !s.ok()) return s;
  return row;
}

Status Core::OpCancelScheduled(const Actor& actor, uint64_t scheduled_id) {
  auto& w = store_.writer();
  auto row = w.Scheduled(scheduled_id);
  if (!row.ok()) return row.status();
  if (!row.value() || row.value()->user_id != actor.user_id || row.value()->status == "cancelled") {
    return NotFound("no such scheduled message");
  }
  auto done = w.FinishScheduled(scheduled_id, "cancelled", 0, "", clock_->NowMs());
  if (!done.ok()) return done.status();
  if (!*done) return Status(Code::kConflict, "the scheduled message was already " + row.value()->status, "conflict");
  return Status::Ok();
}

void Core::SendScheduled() {
  constexpr int kPerBatch = 100;  // bounds the batch; the rest goes in the next one
  scheduled_posted_ = false;
  auto& w = store_.writer();
  const int64_t now = clock_->NowMs();
  auto due = w.DueScheduled(now, kPerBatch);
  if (!due.ok()) {
    log::Error("store: cannot read the due scheduled messages", {{"error", due.status().message()}});
    return;
  }
  for (const store::ScheduledRow& row : *due) {
    SendRequest req;
    Result<SendResult> sent = Status(Code::kInternal, "the scheduled request could not be read");
    if (RequestFromJson(row.request, &req)) {
      req.chat_id = row.chat_id;
      if (req.client_key.empty()) req.client_key = "sched:" + std::to_string(row.scheduled_id);
      const store::UserRow* user = UserOf(row.user_id);
      if (!user || user->disabled) {
        sent = Forbidden("the account is disabled", "account_disabled");
      } else {
        sent = OpSend(Actor{row.user_id, row.device_id}, req);
      }
    }
    if (batch_failed_) return;  // the store failed: nothing of this batch stays; next tick retries
    // Recovering our own log began after this batch was posted: the row waits (next tick).
    if (!sent.ok() && own_log_.Holding() && sent.status().code() == Code::kUnavailable) continue;
    auto done =
        w.FinishScheduled(row.scheduled_id, sent.ok() ? "sent" : "failed", sent.ok() ? sent->message.message_id : 0,
                          sent.ok() ? "" : sent.status().wire_code() + ": " + sent.status().message(), now);
    if (!done.ok()) {
      batch_failed_ = true;
      log::Error("store: cannot record a scheduled message's outcome", {{"error", done.status().message()}});
      return;
    }
  }
  (void)w.PruneScheduled(now - kKeepFinishedMs);
  if (static_cast<int>(due->size()) == kPerBatch && !own_log_.Holding()) {
    scheduled_posted_ = Post([this] { SendScheduled(); });
  }
}

}  // namespace chatd
