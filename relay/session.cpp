// Client sessions: frames in, requests to the core, replies out. Gateway thread only.
#include "relay/session.h"

#include <libwebsockets.h>

#include <algorithm>

#include "base/json.h"
#include "base/log.h"
#include "relay/calls.h"
#include "relay/events.h"
#include "relay/gateway.h"

namespace chatd {

namespace {

constexpr int kMaxBadFrames = 20;
// Ephemeral frames fan out to a chat's members and to every peer relay and nothing stored
// bounds them: a session may send limits.ephemeral_burst at once, then
// limits.ephemeral_per_second.
constexpr int kSyncPage = 500;
constexpr int kSyncMaxEvents = 10000;
constexpr size_t kMaxTempId = 128;

Actor ActorOf(const Session* s) { return Actor{s->user_id, s->device_id}; }

std::string SimpleEvent(std::string_view type, std::initializer_list<std::pair<const char*, uint64_t>> ids) {
  json::JsonWriter w;
  w.BeginObject().Key("type").Str(type);
  for (const auto& [k, v] : ids) w.Key(k).Id(v);
  w.EndObject();
  return w.Take();
}

}  // namespace

void Gateway::OnOpen(lws* wsi, Session** slot) {
  auto* s = new Session();
  s->id = next_session_id_++;
  s->wsi = wsi;
  *slot = s;
  sessions_[s->id] = s;
  stats_.sessions = sessions_.size();
  stats_.accepted++;
  // The first frame must be `auth`, within gateway.auth_timeout (the liveness wheel, not
  // lws_set_timeout: lws keeps its timeouts in one sorted list, O(connections) per insert).
  s->opened = s->last_rx = NowTick();
  Schedule(s, s->opened + static_cast<uint32_t>(cfg_.auth_timeout_s));
  if (draining_) CloseSession(s, 1001, "server shutting down");
}

void Gateway::OnClosed(Session* s) {
  Unschedule(s);
  sessions_.erase(s->id);
  if (s->authed) {
    auto it = by_user_.find(s->user_id);
    if (it != by_user_.end()) {
      auto& v = it->second;
      v.erase(std::remove(v.begin(), v.end(), s), v.end());
      if (v.empty()) {  // the user's last session: offline
        by_user_.erase(it);
        uint64_t uid = s->user_id;
        if (!closing_all_) core_.Post([this, uid] { (void)core_.OpPresence(uid, "offline", 0); });
      }
    }
    stats_.authenticated--;
  }
  stats_.sessions = sessions_.size();
  delete s;
  if (closing_all_ && sessions_.empty()) ExitLoop();
}

void Gateway::OnReceive(Session* s, const char* data, size_t len, bool first, bool final, bool binary) {
  if (s->close_code) return;
  if (binary) {
    if (final) SendError(s, Status(Code::kUnsupported, "binary frames are not supported; send JSON text"), "");
    return;
  }
  size_t max = static_cast<size_t>(cfg_.max_frame_bytes);
  size_t remaining = lws_remaining_packet_payload(s->wsi);
  if (first && final && remaining == 0 && s->rx.empty() && !s->rx_overflow) {
    if (len > max) {
      SendError(s, TooLarge("frame larger than " + std::to_string(max) + " bytes"), "");
      return;
    }
    HandleFrame(s, std::string_view(data, len));
    return;
  }
  if (first) {
    s->rx.clear();
    s->rx_overflow = false;
  }
  if (!s->rx_overflow) {
    if (s->rx.size() + len > max) {
      s->rx_overflow = true;
      s->rx.clear();
      s->rx.shrink_to_fit();
    } else {
      s->rx.append(data, len);
    }
  }
  if (!final || remaining > 0) return;
  if (s->rx_overflow) {
    s->rx_overflow = false;
    SendError(s, TooLarge("frame larger than " + std::to_string(max) + " bytes"), "");
    return;
  }
  std::string text = std::move(s->rx);
  s->rx.clear();
  s->rx.shrink_to_fit();
  HandleFrame(s, text);
}

bool Gateway::TakeEphemeral(Session* s, int* retry_after) {
  const uint64_t now = uv_now(&loop_);
  const uint64_t burst = static_cast<uint64_t>(cfg_.ephemeral_burst),
                 rate = static_cast<uint64_t>(cfg_.ephemeral_per_second);
  if (s->eph_ms == 0) {
    s->eph_ms = now;
    s->eph_tokens = static_cast<uint16_t>(burst);
  }
  const uint64_t add = (now - s->eph_ms) * rate / 1000;
  if (add > 0) {
    s->eph_tokens = static_cast<uint16_t>(std::min<uint64_t>(burst, s->eph_tokens + add));
    s->eph_ms = s->eph_tokens == burst ? now : s->eph_ms + add * 1000 / rate;
  }
  if (s->eph_tokens == 0) {
    *retry_after = 1;  // a token comes within 1000 / rate ms (rate >= 1)
    return false;
  }
  --s->eph_tokens;
  return true;
}

void Gateway::SendJson(Session* s, std::string_view json) { Enqueue(s, MakeTextFrame(json), 0); }

void Gateway::SendError(Session* s, const Status& st, std::string_view ref) {
  stats_.bad_frames++;
  SendJson(s, events::ErrorEvent(st, ref));
  if (++s->bad_frames > kMaxBadFrames) CloseSession(s, 1008, "too many bad frames");
}

void Gateway::CoreRequest(Session* s, std::function<std::string(Core&)> op) {
  uint64_t sid = s->id;
  bool posted = core_.Post([this, sid, op = std::move(op)] {
    // The reply is one of the batch's deliveries, so it leaves once the batch is durable,
    // in order with the batch's events. If the batch fails, its deliveries are dropped and
    // the client hears that nothing was saved instead.
    std::string reply = op(core_);
    if (!reply.empty()) {
      Delivery d;
      d.type = Delivery::Type::kSession;
      d.session_id = sid;
      d.frame = MakeTextFrame(reply);
      core_.QueueDelivery(std::move(d));
    }
    core_.AfterCommit([this, sid](bool ok) {
      if (ok) return;
      Post([this, sid] {
        auto it = sessions_.find(sid);
        if (it == sessions_.end()) return;
        SendJson(it->second, events::ErrorEvent(Internal("the store could not commit; nothing was saved"), ""));
      });
    });
  });
  if (!posted) SendError(s, Status(Code::kUnavailable, "the relay is shutting down"), "");
}

void Gateway::HandleFrame(Session* s, std::string_view text) {
  stats_.frames_in++;
  json::Doc doc;
  Status st = json::Parse(text, &doc);
  if (!st.ok()) {
    SendError(s, st, "");
    return;
  }
  std::string_view type = json::TypeOf(doc);
  std::string type_ref(type.substr(0, 32));
  s->bad_frames = 0;  // only consecutive bad frames close a session
  if (!s->authed) {
    if (type != "auth") {
      SendJson(s, events::ErrorEvent(Unauthorized("the first frame must be auth"), type_ref));
      s->close_after_flush = true;
      CloseSession(s, 1008, "authentication required");
      return;
    }
    HandleAuth(s, doc);
    return;
  }
  if (draining_) {
    SendError(s, Status(Code::kUnavailable, "the relay is shutting down; reconnect shortly"), type_ref);
    return;
  }
  Actor actor = ActorOf(s);
  if (type == "typing" || type == "presence" || IsCallType(type)) {
    int retry_after = 1;
    if (!TakeEphemeral(s, &retry_after)) {
      Status limited(Code::kRateLimited, "more than " + std::to_string(cfg_.ephemeral_per_second) +
                                             " typing, presence and call frames a second; this one was dropped");
      limited.retry_after = retry_after;
      SendJson(s, events::ErrorEvent(limited, type_ref));  // not a bad frame: the session is fine
      return;
    }
  }
  if (type == "ping") {
    SendJson(s, R"({"type":"pong"})");
  } else if (type == "send_message") {
    auto temp = json::GetString(doc, "temp_id", kMaxTempId);
    std::string ref = temp.ok() ? std::string(*temp) : std::string();
    auto chat = json::GetId(doc, "chat_id");
    auto mtype = json::GetOptString(doc, "message_type", 16);
    auto content = json::GetOptString(doc, "content", static_cast<size_t>(cfg_.max_content_bytes));
    auto reply = json::GetOptId(doc, "reply_to_message_id");
    auto file = json::GetOptId(doc, "file_id");
    for (const Status* e : {&temp.status(), &chat.status(), &mtype.status(), &content.status(), &reply.status(), &file.status()}) {
      if (!e->ok()) {
        SendError(s, *e, ref);
        return;
      }
    }
    if (doc.HasMember("send_at") && !doc["send_at"].IsNull()) {
      return SendError(s, Status(Code::kUnsupported, "schedule messages with REST POST /chats/{id}/messages"), ref);
    }
    SendRequest req;
    if (Status f = events::ReadForwardFrom(doc, &req.forward_chat_id, &req.forward_message_id); !f.ok()) {
      return SendError(s, f, ref);
    }
    if (Status e = events::ReadEncrypted(doc, &req.encrypted); !e.ok()) return SendError(s, e, ref);
    req.chat_id = *chat;
    req.message_type = mtype.value() ? std::string(**mtype) : "text";
    req.content = content.value() ? std::string(**content) : std::string();
    req.reply_to = reply.value().value_or(0);
    req.file_id = file.value().value_or(0);
    req.client_key = "ws:" + std::to_string(s->device_id) + ":" + ref;
    req.session_id = s->id;
    CoreRequest(s, [actor, req, ref](Core& core) {
      auto r = core.OpSend(actor, req);
      if (!r.ok()) return events::ErrorEvent(r.status(), ref);
      json::JsonWriter w;
      w.BeginObject().Key("type").Str("message_sent").Key("temp_id").Str(ref);
      w.Key("message_id").Id(r->message.message_id).Key("chat_id").Id(r->message.chat_id);
      w.Key("created_at").Time(r->message.created_at).Key("cursor").Id(r->cursor);
      w.Key("duplicate").Bool(r->duplicate);
      if (r->message.expires_at) w.Key("expires_at").Time(r->message.expires_at);
      w.EndObject();
      return w.Take();
    });
  } else if (type == "join_chat") {
    auto chat = json::GetId(doc, "chat_id");
    if (!chat.ok()) return SendError(s, chat.status(), type_ref);
    uint64_t chat_id = *chat;
    CoreRequest(s, [actor, chat_id](Core& core) {
      Status r = core.OpCheckMember(actor, chat_id);
      if (!r.ok()) return events::ErrorEvent(r, "join_chat");
      return SimpleEvent("joined", {{"chat_id", chat_id}});
    });
  } else if (type == "edit_message" || type == "delete_message" || type == "react") {
    auto chat = json::GetId(doc, "chat_id");
    auto mid = json::GetId(doc, "message_id");
    if (!chat.ok()) return SendError(s, chat.status(), type_ref);
    if (!mid.ok()) return SendError(s, mid.status(), type_ref);
    uint64_t chat_id = *chat, message_id = *mid;
    if (type == "edit_message") {
      auto content = json::GetString(doc, "content", static_cast<size_t>(cfg_.max_content_bytes));
      if (!content.ok()) return SendError(s, content.status(), type_ref);
      std::string c(*content);
      CoreRequest(s, [actor, chat_id, message_id, c](Core& core) {
        auto r = core.OpEdit(actor, chat_id, message_id, c);
        return r.ok() ? SimpleEvent("edit_ok", {{"chat_id", chat_id}, {"message_id", message_id}})
                      : events::ErrorEvent(r.status(), "edit_message");
      });
    } else if (type == "delete_message") {
      auto scope = json::GetOptString(doc, "for", 16);
      if (!scope.ok()) return SendError(s, scope.status(), type_ref);
      const bool for_me = scope.value() && **scope == "me";
      if (scope.value() && !for_me && **scope != "everyone") {
        return SendError(s, BadRequest("field 'for' must be me or everyone"), type_ref);
      }
      CoreRequest(s, [actor, chat_id, message_id, for_me](Core& core) {
        Status r = for_me ? core.OpHideForMe(actor, chat_id, message_id) : core.OpDelete(actor, chat_id, message_id);
        return r.ok() ? SimpleEvent("delete_ok", {{"chat_id", chat_id}, {"message_id", message_id}})
                      : events::ErrorEvent(r, "delete_message");
      });
    } else {
      auto reaction = json::GetString(doc, "reaction_type", 32);
      auto op = json::GetOptString(doc, "op", 8);
      if (!reaction.ok()) return SendError(s, reaction.status(), type_ref);
      if (!op.ok()) return SendError(s, op.status(), type_ref);
      bool add = !op.value() || **op != "remove";
      std::string r(*reaction);
      CoreRequest(s, [actor, chat_id, message_id, r, add](Core& core) {
        Status st2 = core.OpReact(actor, chat_id, message_id, r, add);
        return st2.ok() ? SimpleEvent("react_ok", {{"chat_id", chat_id}, {"message_id", message_id}})
                        : events::ErrorEvent(st2, "react");
      });
    }
  } else if (type == "typing") {
    auto chat = json::GetId(doc, "chat_id");
    auto state = json::GetString(doc, "state", 8);
    if (!chat.ok()) return SendError(s, chat.status(), type_ref);
    if (!state.ok()) return SendError(s, state.status(), type_ref);
    if (*state != "start" && *state != "stop") {
      return SendError(s, BadRequest("field 'state' must be \"start\" or \"stop\""), type_ref);
    }
    uint64_t chat_id = *chat, sid = s->id;
    bool start = *state == "start";
    CoreRequest(s, [actor, chat_id, start, sid](Core& core) {
      Status r = core.OpTyping(actor, chat_id, start, sid);
      return r.ok() ? std::string() : events::ErrorEvent(r, "typing");
    });
  } else if (type == "call_invite" || type == "call_ringing" || type == "call_answer" || type == "call_ice" ||
             type == "call_reject" || type == "call_end") {
    auto sig = std::make_shared<CallSignal>();
    if (Status p = ParseCallSignal(doc, sig.get()); !p.ok()) return SendError(s, p, type_ref);
    uint64_t sid = s->id;
    CoreRequest(s, [actor, sig, sid](Core& core) {
      Status r = core.OpCall(actor, *sig, sid);
      return r.ok() ? std::string() : events::ErrorEvent(r, sig->type);
    });
  } else if (type == "ack") {
    auto chat = json::GetId(doc, "chat_id");
    auto mid = json::GetId(doc, "message_id");
    auto status = json::GetString(doc, "status", 16);
    if (!chat.ok()) return SendError(s, chat.status(), type_ref);
    if (!mid.ok()) return SendError(s, mid.status(), type_ref);
    if (!status.ok()) return SendError(s, status.status(), type_ref);
    if (*status != "delivered" && *status != "read") {
      return SendError(s, BadRequest("field 'status' must be \"delivered\" or \"read\""), type_ref);
    }
    uint64_t chat_id = *chat, message_id = *mid;
    bool read = *status == "read";
    CoreRequest(s, [actor, chat_id, message_id, read](Core& core) {
      Status r = core.OpReceipt(actor, chat_id, message_id, read);
      return r.ok() ? std::string() : events::ErrorEvent(r, "ack");
    });
  } else if (type == "sync") {
    auto it = doc.FindMember("cursor");
    uint64_t cursor = 0;
    if (it != doc.MemberEnd() && !it->value.IsNull()) {
      if (it->value.IsString() && it->value.GetStringLength() == 1 && it->value.GetString()[0] == '0') {
        cursor = 0;
      } else if (it->value.IsUint64() && it->value.GetUint64() == 0) {
        cursor = 0;
      } else {
        auto c = json::IdFromValue(it->value);
        if (!c) return SendError(s, BadRequest("field 'cursor' must be a cursor (a decimal string)"), type_ref);
        cursor = *c;
      }
    }
    if (s->syncing) return SendError(s, Status(Code::kConflict, "a sync is already running"), type_ref);
    StartSync(s, cursor);
  } else if (type == "presence") {
    auto status = json::GetString(doc, "status", 16);
    if (!status.ok()) return SendError(s, status.status(), type_ref);
    if (*status != "online" && *status != "away" && *status != "busy") {
      return SendError(s, BadRequest("field 'status' must be online, away or busy"), type_ref);
    }
    std::string presence(*status);
    uint64_t uid = s->user_id, sid = s->id;
    CoreRequest(s, [uid, presence, sid](Core& core) {
      Status r = core.OpPresence(uid, presence, sid);
      return r.ok() ? std::string(R"({"type":"presence_ok"})") : events::ErrorEvent(r, "presence");
    });
  } else if (type == "auth") {
    SendError(s, Status(Code::kConflict, "already authenticated"), type_ref);
  } else {
    SendError(s, BadRequest(type.empty() ? std::string("field 'type' is required")
                                         : "unknown frame type '" + type_ref + "'"),
              type_ref);
  }
}

void Gateway::HandleAuth(Session* s, const json::Value& v) {
  auto token = json::GetString(v, "token", 4096);
  Result<Claims> claims = token.ok() ? tokens_.Verify(*token) : Result<Claims>(token.status());
  if (!claims.ok()) {
    Status st = claims.status().code() == Code::kBadRequest ? claims.status() : Unauthorized(claims.status().message());
    SendJson(s, events::ErrorEvent(st, "auth"));
    s->close_after_flush = true;
    CloseSession(s, 1008, "authentication failed");
    return;
  }
  s->authed = true;
  // Events up to the newest commit are the client's to fetch with sync; later ones come
  // live. Deliveries for commits at or below it that are still on their way are dropped.
  s->live_from = std::max(core_.CommittedPos(), last_cursor_);
  s->user_id = claims->user_id;
  s->device_id = claims->device_id;
  auto& mine = by_user_[s->user_id];
  mine.push_back(s);
  if (mine.size() == 1) {  // the user's first session: online
    uint64_t uid = s->user_id;
    core_.Post([this, uid] { (void)core_.OpPresence(uid, "online", 0); });
  }
  stats_.authenticated++;
  // From now on: a ping after gateway.ping_interval of silence, a hang-up after idle_timeout.
  s->last_rx = NowTick();
  if (!s->close_code) Schedule(s, s->last_rx + static_cast<uint32_t>(cfg_.ping_interval_s));
  json::JsonWriter w;
  w.BeginObject().Key("type").Str("auth_ok").Key("user_id").Id(s->user_id).Key("relay").Str(claims->relay)
      .Key("device_id").Id(s->device_id).Key("cursor").Str(std::to_string(s->live_from)).EndObject();
  SendJson(s, w.View());
}

void Gateway::StartSync(Session* s, uint64_t cursor) {
  // Everything after live_from reaches this session live, so a sync only reads the gap
  // (cursor, live_from]; reading further would hand the client events twice.
  s->syncing = true;
  s->synced_upto = 0;
  s->sync_from = s->sync_at = cursor;
  s->sync_upper = s->live_from;
  s->sync_sent = 0;
  s->sync_waiting = false;
  if (cursor >= s->sync_upper) {
    FinishSync(s, cursor, cursor, false);
    return;
  }
  RequestSyncPage(s);
}

void Gateway::RequestSyncPage(Session* s) {
  uint64_t sid = s->id, user = s->user_id, at = s->sync_at, upper = s->sync_upper;
  workers_.Submit([this, sid, user, at, upper](store::Queries& q) {
    auto rows = q.EnvelopesSince(user, at, kSyncPage, upper);
    auto frames = std::make_shared<std::vector<Queued>>();
    uint64_t next_at = at;
    bool failed = !rows.ok();
    if (failed) {
      log::Error("sync: read failed", {{"error", rows.status().message()}});
    } else {
      for (const auto& row : *rows) {
        std::string ev = events::EventFor(row, q);
        next_at = row.pos;
        if (!ev.empty()) frames->push_back({MakeTextFrame(ev), row.pos});
      }
    }
    size_t n = failed ? 0 : rows->size();
    Post([this, sid, frames, next_at, n, failed] {
      auto it = sessions_.find(sid);
      if (it == sessions_.end()) return;
      Session* s2 = it->second;
      for (const auto& f : *frames) {
        s2->out.push_back(f);
        s2->out_bytes += f.frame->size();
      }
      if (!frames->empty()) RequestWrite(s2);
      s2->sync_at = next_at;
      s2->sync_sent += static_cast<int>(n);
      bool last = static_cast<int>(n) < kSyncPage;
      bool more = failed || (!last && s2->sync_sent >= kSyncMaxEvents);
      if (last || more) return FinishSync(s2, s2->sync_from, next_at, more);
      // Pace the reads by the socket: the next page waits until the queue has drained.
      if (s2->out_bytes < static_cast<size_t>(cfg_.session_queue_bytes) / 2) RequestSyncPage(s2);
      else s2->sync_waiting = true;
    });
  });
}

void Gateway::FinishSync(Session* s, uint64_t from, uint64_t upto, bool has_more) {
  // Complete: the client now holds everything after `from` (what it had, what the sync
  // read, what came live). Partial: it continues from `upto` with another sync.
  uint64_t through = has_more ? upto : std::max(upto, last_cursor_);
  json::JsonWriter w;
  w.BeginObject().Key("type").Str("sync_done").Key("cursor").Str(std::to_string(through))
      .Key("has_more").Bool(has_more).EndObject();
  s->syncing = false;
  s->synced_upto = upto;
  std::vector<Queued> held = std::move(s->held);
  s->held.clear();
  for (auto& q : held) s->out_bytes -= std::min(s->out_bytes, q.frame->size());
  // Live events that arrived during the sync follow what it read, in cursor order.
  for (auto& q : held) {
    if (q.cursor > upto) Enqueue(s, q.frame, q.cursor);
  }
  Enqueue(s, MakeTextFrame(w.View()), 0);
}

}  // namespace chatd
