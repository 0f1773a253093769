// Core operations on messages, reactions, receipts and typing, and the delivery of
// ephemeral events (typing, presence, call signals) locally and from peers (core thread only).
#include <algorithm>

#include "base/json.h"
#include "relay/calls.h"
#include "relay/core.h"
#include "relay/events.h"
#include "relay/files.h"

namespace chatd {

namespace {

bool ValidMessageType(const std::string& t) {
  return t == "text" || t == "image" || t == "video" || t == "file" || t == "audio";
}

constexpr int64_t kEditWindowMs = 5 * 60 * 1000;

crypto::Envelope ChatEnvelope(crypto::Kind kind, const Actor& actor, uint64_t chat_id, std::string body) {
  crypto::Envelope env;
  env.kind = kind;
  env.chat_id = chat_id;
  env.author = actor.user_id;
  env.device = std::to_string(actor.device_id);
  env.body = std::move(body);
  return env;
}

}  // namespace

Status Core::CheckSendBasics(const Actor& actor, const SendRequest& req) {
  if (!ValidMessageType(req.message_type)) {
    return BadRequest("field 'message_type' must be text, image, video, file or audio");
  }
  if (req.content.size() > static_cast<size_t>(cfg_.max_content_bytes)) {
    return TooLarge("field 'content' is longer than " + std::to_string(cfg_.max_content_bytes) + " bytes");
  }
  if (req.forward_message_id) {
    if (!req.content.empty() || req.file_id) return BadRequest("a forwarded message takes no content or file_id");
    if (req.encrypted) {
      return BadRequest("field 'encrypted' cannot be set on a forward: the relay copies the source as it is");
    }
  } else if (req.message_type == "text" && req.content.empty()) {
    return BadRequest("field 'content' is required");
  }
  if (req.file_id && req.message_type == "text") {
    return BadRequest("a message with a file_id must have message_type image, video, file or audio");
  }
  return MembersIncluding(req.chat_id, actor.user_id).status();
}

Result<Core::ResolvedSend> Core::ResolveSend(const Actor& actor, const SendRequest& req, int64_t now) {
  auto& w = store_.writer();
  if (uint64_t peer = DirectPeerOf(req.chat_id, actor.user_id)) {
    if (Status s = CheckNotBlocked(actor.user_id, peer); !s.ok()) return s;
  }
  if (req.file_id) {  // the same check for REST and WebSocket sends
    auto file = w.File(req.file_id);
    if (!file.ok()) return file.status();
    if (!file.value() || file.value()->chat_id != req.chat_id) {
      return NotFound("file_id is not a file uploaded to this chat");
    }
    auto in_use = w.FileInUse(req.file_id, now, files::UnsentSince(now, cfg_.unsent_file_ttl_s));
    if (!in_use.ok()) return in_use.status();
    if (!*in_use) return NotFound(files::kFileGone);
  }
  if (req.reply_to) {
    auto parent = w.Message(req.reply_to);
    if (!parent.ok()) return parent.status();
    if (!parent.value() || parent.value()->chat_id != req.chat_id) {
      return NotFound("reply_to_message_id is not a message of this chat");
    }
  }
  ResolvedSend out{req.message_type, req.content, req.file_id};
  if (req.forward_message_id) {
    // A copy of a message the sender can read, naming its source.
    auto src = w.Message(req.forward_message_id);
    if (!src.ok()) return src.status();
    auto src_role = w.RoleOf(req.forward_chat_id, actor.user_id);
    if (!src_role.ok()) return src_role.status();
    if (!src.value() || src.value()->chat_id != req.forward_chat_id || !src_role.value() || src.value()->deleted ||
        (src.value()->expires_at && src.value()->expires_at <= now)) {
      return NotFound("forward_from is not a message you can read");
    }
    if (src.value()->encrypted) {  // ciphertext for the source chat's devices: useless elsewhere
      return BadRequest(
          "forward_from is an end-to-end encrypted message: the relay cannot re-encrypt it; decrypt it and send "
          "it again encrypted for the other chat");
    }
    out.message_type = src.value()->message_type;
    out.content = src.value()->content;
    out.file_id = src.value()->file_id;
  }
  return out;
}

Result<SendResult> Core::OpSend(const Actor& actor, const SendRequest& req) {
  auto& w = store_.writer();
  if (Status s = CheckSendBasics(actor, req); !s.ok()) return s;
  if (!req.client_key.empty()) {
    auto prior = w.MessageByClientKey(actor.user_id, req.client_key);
    if (!prior.ok()) return prior.status();
    if (prior.value()) {
      auto m = w.Message(*prior.value());
      if (!m.ok()) return m.status();
      if (m.value()) {
        SendResult r;
        r.message = std::move(*m.value());
        r.cursor = r.message.pos;
        r.duplicate = true;
        return r;
      }
    }
  }
  // After the idempotency check: a resend of a message stored before a block gets that message.
  const int64_t now = clock_->NowMs();
  auto resolved = ResolveSend(actor, req, now);
  if (!resolved.ok()) return resolved.status();
  std::string message_type = std::move(resolved->message_type), content = std::move(resolved->content);
  const uint64_t file_id = resolved->file_id;
  const int64_t timer_s = TimerOf(req.chat_id);
  const int64_t expires_at = timer_s > 0 ? now + timer_s * 1000 : 0;
  json::JsonWriter body;
  body.BeginObject();
  body.Key("message_type").Str(message_type);
  body.Key("content").Str(content);
  if (req.reply_to) body.Key("reply_to_message_id").Id(req.reply_to);
  if (file_id) body.Key("file_id").Id(file_id);
  if (req.encrypted) body.Key("encrypted").Bool(true);  // every relay: opaque, never indexed
  if (req.forward_message_id) {
    body.Key("forwarded_from").BeginObject().Key("chat_id").Id(req.forward_chat_id);
    body.Key("message_id").Id(req.forward_message_id).EndObject();
  }
  if (!req.client_key.empty()) body.Key("client_key").Str(req.client_key);
  if (expires_at) body.Key("expires_at").Int(expires_at);  // every relay erases it then
  body.EndObject();
  crypto::Envelope env = ChatEnvelope(crypto::Kind::kMsgPost, actor, req.chat_id, body.Take());
  env.created_at = now;  // expires_at counts from it
  auto pos = Emit(env);
  if (!pos.ok()) return pos.status();
  SendResult r;
  r.message.message_id = env.id;
  r.message.chat_id = req.chat_id;
  r.message.sender_id = actor.user_id;
  r.message.message_type = std::move(message_type);
  r.message.content = std::move(content);
  r.message.reply_to = req.reply_to;
  r.message.file_id = file_id;
  r.message.encrypted = req.encrypted;
  r.message.forwarded_chat_id = req.forward_message_id ? req.forward_chat_id : 0;
  r.message.forwarded_message_id = req.forward_message_id;
  r.message.created_at = env.created_at;
  r.message.expires_at = expires_at;
  r.message.pos = *pos;
  r.cursor = *pos;
  // The hot path: render new_message from what we hold instead of reading it back.
  if (const store::UserRow* sender = UserOf(actor.user_id)) {
    r.message.sender_username = sender->username;
    r.message.sender_relay = sender->relay;
    if (sender->privacy.profile_photo == "everyone") r.message.sender_picture = sender->profile_picture_url;
  }
  json::JsonWriter ev;
  ev.BeginObject().Key("type").Str("new_message").Key("message");
  events::WriteMessage(ev, r.message);
  ev.Key("cursor").Id(*pos).EndObject();
  PublishEvent(req.chat_id, ev.View(), *pos, req.session_id);
  return r;
}

Result<store::MessageRow> Core::OpEdit(const Actor& actor, uint64_t chat_id, uint64_t message_id,
                                       const std::string& content) {
  auto role = RoleOrNotMember(chat_id, actor.user_id);
  if (!role.ok()) return role.status();
  if (content.empty()) return BadRequest("field 'content' is required");
  if (content.size() > static_cast<size_t>(cfg_.max_content_bytes)) {
    return TooLarge("field 'content' is longer than " + std::to_string(cfg_.max_content_bytes) + " bytes");
  }
  auto m = store_.writer().Message(message_id);
  if (!m.ok()) return m.status();
  if (!m.value() || m.value()->chat_id != chat_id) return NotFound("no such message in this chat");
  if (m.value()->sender_id != actor.user_id) return Forbidden("only the author can edit a message");
  if (m.value()->deleted) return NotFound("the message was deleted");
  int64_t now = clock_->NowMs();
  if (now - m.value()->created_at > kEditWindowMs) {
    return Forbidden("messages can be edited for 5 minutes after sending", "edit_window_closed");
  }
  json::JsonWriter body;
  body.BeginObject().Key("message_id").Id(message_id).Key("content").Str(content);
  // The new text of a disappearing message disappears with it, on every relay.
  if (m.value()->expires_at) body.Key("expires_at").Int(m.value()->expires_at);
  // The new content of an encrypted message is ciphertext too (shown with the flag).
  if (m.value()->encrypted) body.Key("encrypted").Bool(true);
  body.EndObject();
  crypto::Envelope env = ChatEnvelope(crypto::Kind::kMsgEdit, actor, chat_id, body.Take());
  env.created_at = now;  // peers check the window against this same time
  auto pos = Emit(env);
  if (!pos.ok()) return pos.status();
  Publish(env, *pos, 0);
  auto after = store_.writer().Message(message_id);
  if (!after.ok()) return after.status();
  return std::move(*after.value());
}

Status Core::OpDelete(const Actor& actor, uint64_t chat_id, uint64_t message_id) {
  auto role = RoleOrNotMember(chat_id, actor.user_id);
  if (!role.ok()) return role.status();
  auto m = store_.writer().Message(message_id);
  if (!m.ok()) return m.status();
  if (!m.value() || m.value()->chat_id != chat_id) return NotFound("no such message in this chat");
  if (m.value()->sender_id != actor.user_id && *role != "admin") {
    return Forbidden("only the author or a chat admin can delete a message for everyone");
  }
  if (m.value()->deleted) return Status::Ok();
  json::JsonWriter body;
  body.BeginObject().Key("message_id").Id(message_id).Key("for").Str("everyone");
  // The tombstone of a disappearing message disappears at the message's time, on every
  // relay: the delete's own body (which names the message) is erased then.
  if (m.value()->expires_at) body.Key("expires_at").Int(m.value()->expires_at);
  body.EndObject();
  crypto::Envelope env = ChatEnvelope(crypto::Kind::kMsgDelete, actor, chat_id, body.Take());
  auto pos = Emit(env);
  if (!pos.ok()) return pos.status();
  Publish(env, *pos, 0);
  return Status::Ok();
}

Status Core::OpHideForMe(const Actor& actor, uint64_t chat_id, uint64_t message_id) {
  auto role = RoleOrNotMember(chat_id, actor.user_id);
  if (!role.ok()) return role.status();
  auto& w = store_.writer();
  auto m = w.Message(message_id);
  if (!m.ok()) return m.status();
  if (!m.value() || m.value()->chat_id != chat_id) return NotFound("no such message in this chat");
  auto hidden = w.Hidden(actor.user_id, message_id);
  if (!hidden.ok()) return hidden.status();
  if (*hidden) return Status::Ok();
  // The system stream: only the user's own devices see it (Publish, sync), not the chat.
  crypto::Envelope env = ChatEnvelope(crypto::Kind::kHideForMe, actor, 0, "");
  json::JsonWriter body;
  body.BeginObject().Key("chat_id").Id(chat_id).Key("message_id").Id(message_id).EndObject();
  env.body = body.Take();
  auto pos = Emit(env);
  if (!pos.ok()) return pos.status();
  Publish(env, *pos, 0);
  return Status::Ok();
}

Status Core::OpReact(const Actor& actor, uint64_t chat_id, uint64_t message_id, const std::string& reaction,
                     bool add) {
  auto role = RoleOrNotMember(chat_id, actor.user_id);
  if (!role.ok()) return role.status();
  if (reaction.empty() || reaction.size() > 32) return BadRequest("field 'reaction_type' must be 1 to 32 bytes");
  auto m = store_.writer().Message(message_id);
  if (!m.ok()) return m.status();
  if (!m.value() || m.value()->chat_id != chat_id || m.value()->deleted) {
    return NotFound("no such message in this chat");
  }
  json::JsonWriter body;
  body.BeginObject().Key("message_id").Id(message_id).Key("reaction_type").Str(reaction)
      .Key("op").Str(add ? "add" : "remove").EndObject();
  crypto::Envelope env = ChatEnvelope(crypto::Kind::kReaction, actor, chat_id, body.Take());
  auto pos = Emit(env);
  if (!pos.ok()) return pos.status();
  Publish(env, *pos, 0);
  return Status::Ok();
}

Status Core::OpReceipt(const Actor& actor, uint64_t chat_id, uint64_t up_to, bool read) {
  auto role = RoleOrNotMember(chat_id, actor.user_id);
  if (!role.ok()) return role.status();
  auto m = store_.writer().Message(up_to);
  if (!m.ok()) return m.status();
  if (!m.value() || m.value()->chat_id != chat_id) return NotFound("no such message in this chat");
  json::JsonWriter body;
  body.BeginObject().Key("up_to_message_id").Id(up_to).Key("status").Str(read ? "read" : "delivered").EndObject();
  crypto::Envelope env = ChatEnvelope(crypto::Kind::kReceipt, actor, chat_id, body.Take());
  auto pos = Emit(env);
  if (!pos.ok()) return pos.status();
  Publish(env, *pos, 0);
  return Status::Ok();
}

Result<std::shared_ptr<const std::vector<uint64_t>>> Core::MembersIncluding(uint64_t chat_id, uint64_t user_id) {
  auto members = MembersOf(chat_id);
  if (std::find(members->begin(), members->end(), user_id) == members->end()) {
    auto role = RoleOrNotMember(chat_id, user_id);
    if (!role.ok()) return role.status();
    InvalidateMembers(chat_id);  // the cache was stale
    members = MembersOf(chat_id);
  }
  return members;
}

void Core::DeliverEphemeral(std::shared_ptr<const std::vector<uint64_t>> users, uint64_t skip_session,
                            std::string_view event_json) {
  Delivery d;
  d.type = Delivery::Type::kUsers;
  d.session_id = skip_session;
  d.users = std::move(users);
  d.frame = MakeTextFrame(event_json);
  QueueDelivery(std::move(d));
}

Status Core::OpTyping(const Actor& actor, uint64_t chat_id, bool start, uint64_t skip_session) {
  auto members = MembersIncluding(chat_id, actor.user_id);
  if (!members.ok()) return members.status();
  // Nothing reaches across a block in a direct chat, typing included.
  if (uint64_t peer = DirectPeerOf(chat_id, actor.user_id)) {
    if (Status s = CheckNotBlocked(actor.user_id, peer); !s.ok()) return s;
  }
  json::JsonWriter w;
  w.BeginObject().Key("type").Str("user_typing").Key("chat_id").Id(chat_id).Key("user_id").Id(actor.user_id)
      .Key("state").Str(start ? "start" : "stop").EndObject();
  DeliverEphemeral(*members, skip_session, w.View());
  ForwardEphemeral(chat_id, 0, w.Take());
  return Status::Ok();
}

std::shared_ptr<const std::vector<uint64_t>> Core::PresenceAudienceOf(uint64_t user_id) {
  auto list = store_.writer().PresenceAudience(user_id);
  return std::make_shared<const std::vector<uint64_t>>(list.ok() ? std::move(*list) : std::vector<uint64_t>());
}

void Core::ForwardEphemeral(uint64_t chat_id, uint64_t user_id, std::string event_json) {
  if (!replicate_) return;
  Delivery d;
  d.type = Delivery::Type::kEphemeral;
  d.chat_id = chat_id;
  d.user_id = user_id;
  d.frame_json = std::move(event_json);
  QueueDelivery(std::move(d));
}

void Core::OpRemoteEphemeral(uint64_t chat_id, uint64_t user_id, const std::string& event_json) {
  // Only typing (by a member of the chat), presence (relay/presence.cpp) and call signals
  // (relay/ops_calls.cpp) are accepted from peers; the event is rebuilt from checked
  // fields, never passed through.
  json::Doc ev;
  if (!json::Parse(event_json, &ev).ok()) return;
  std::string_view type = json::TypeOf(ev);
  if (type == "presence_snapshot") {
    if (chat_id == 0 && user_id == 0) RemotePresenceSnapshot(ev);
    return;
  }
  auto uid = json::GetId(ev, "user_id");
  if (!uid.ok()) return;
  if (IsCallType(type)) {
    CallSignal sig;
    auto device = json::GetOptId(ev, "device_id");
    if (ParseCallSignal(ev, &sig).ok() && sig.chat_id == chat_id && device.ok()) {
      RemoteCall(sig, *uid, device.value().value_or(0));
    }
    return;
  }
  json::JsonWriter w;
  std::shared_ptr<const std::vector<uint64_t>> users;
  if (type == "user_typing") {
    auto cid = json::GetId(ev, "chat_id");
    auto state = json::GetString(ev, "state", 8);
    if (!cid.ok() || *cid != chat_id || !state.ok() || (*state != "start" && *state != "stop")) return;
    users = MembersOf(chat_id);
    if (std::find(users->begin(), users->end(), *uid) == users->end()) return;
    if (uint64_t peer = DirectPeerOf(chat_id, *uid); peer && !CheckNotBlocked(*uid, peer).ok()) return;
    w.BeginObject().Key("type").Str("user_typing").Key("chat_id").Id(chat_id).Key("user_id").Id(*uid)
        .Key("state").Str(*state).EndObject();
  } else if (type == "presence_update") {
    if (chat_id == 0 && *uid == user_id) RemotePresence(user_id, ev);
    return;
  } else {
    return;
  }
  DeliverEphemeral(std::move(users), 0, w.View());
}

}  // namespace chatd
