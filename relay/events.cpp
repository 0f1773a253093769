#include "relay/events.h"

#include "base/time.h"
#include "store/views.h"

namespace chatd::events {

using json::JsonWriter;

namespace {

void WriteProfile(JsonWriter& w, const store::UserRow& u, bool about, bool photo) {
  w.Key("user_id").Id(u.user_id);
  w.Key("username").Str(u.username);
  w.Key("handle").Str(u.handle());
  w.Key("relay").Str(u.relay);
  w.Key("first_name").Str(u.first_name);
  w.Key("last_name").Str(u.last_name);
  w.Key("status_message").Str(about ? std::string_view(u.status_message) : std::string_view());
  w.Key("profile_picture_url").StrOrNull(photo ? std::string_view(u.profile_picture_url) : std::string_view());
  w.Key("created_at").Time(u.created_at);
}

}  // namespace

void WriteUserFor(JsonWriter& w, const store::UserRow& u, uint64_t viewer, store::Queries& q) {
  const store::Privacy& p = u.privacy;
  bool about = true, photo = true;
  if (viewer != 0 && viewer != u.user_id && (p.about != "everyone" || p.profile_photo != "everyone")) {
    bool contact = false;
    if (p.about == "contacts" || p.profile_photo == "contacts") {
      auto c = q.IsContact(viewer, u.user_id);
      contact = c.ok() && *c;
    }
    about = store::Privacy::Allows(p.about, contact);
    photo = store::Privacy::Allows(p.profile_photo, contact);
  }
  w.BeginObject();
  WriteProfile(w, u, about, photo);
  w.EndObject();
}

void WriteUserFields(JsonWriter& w, const store::UserRow& u) { WriteProfile(w, u, true, true); }

void WriteOwnProfile(JsonWriter& w, const store::UserRow& u) {
  w.BeginObject();
  WriteProfile(w, u, true, true);
  w.Key("privacy");
  WritePrivacy(w, u.privacy);
  w.EndObject();
}

void WritePrivacy(JsonWriter& w, const store::Privacy& p) {
  w.BeginObject()
      .Key("last_seen")
      .Str(p.last_seen)
      .Key("profile_photo")
      .Str(p.profile_photo)
      .Key("about")
      .Str(p.about)
      .Key("groups")
      .Str(p.groups)
      .Key("read_receipts")
      .Bool(p.read_receipts)
      .EndObject();
}

void WriteMessage(JsonWriter& w, const store::MessageRow& m) {
  w.BeginObject();
  w.Key("message_id").Id(m.message_id);
  w.Key("chat_id").Id(m.chat_id);
  w.Key("sender_id").Id(m.sender_id);
  w.Key("sender").BeginObject();
  w.Key("user_id").Id(m.sender_id);
  w.Key("username").Str(m.sender_username);
  w.Key("handle").Str(m.sender_username + "@" + m.sender_relay);
  w.Key("profile_picture_url").StrOrNull(m.sender_picture);
  w.EndObject();
  w.Key("message_type").Str(m.message_type);
  w.Key("content").Str(m.deleted ? std::string_view() : std::string_view(m.content));
  w.Key("reply_to_message_id").IdOrNull(m.reply_to);
  w.Key("file_id").IdOrNull(m.file_id);
  w.Key("created_at").Time(m.created_at);
  w.Key("is_edited").Bool(m.edited_at != 0);
  if (m.edited_at) w.Key("edited_at").Time(m.edited_at);
  w.Key("is_deleted").Bool(m.deleted);
  w.Key("encrypted").Bool(m.encrypted);                      // end-to-end encrypted: content is the client's ciphertext
  if (m.expires_at) w.Key("expires_at").Time(m.expires_at);  // a disappearing message
  if (m.forwarded_message_id) {                              // a forwarded copy
    w.Key("forwarded_from").BeginObject().Key("chat_id").Id(m.forwarded_chat_id);
    w.Key("message_id").Id(m.forwarded_message_id).EndObject();
  }
  w.Key("reactions").BeginArray();
  for (const auto& r : m.reactions) {
    w.BeginObject();
    w.Key("reaction_type").Str(r.reaction_type);
    w.Key("count").Int(static_cast<int64_t>(r.users.size()));
    w.Key("users").BeginArray();
    for (uint64_t u : r.users) w.Id(u);
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

void WriteChat(JsonWriter& w, const store::ChatRow& c) {
  w.BeginObject();
  w.Key("chat_id").Id(c.chat_id);
  w.Key("chat_type").Str(c.chat_type);
  w.Key("chat_name").StrOrNull(c.chat_name);
  w.Key("chat_description").StrOrNull(c.chat_description);
  w.Key("created_by").Id(c.created_by);
  w.Key("created_at").Time(c.created_at);
  w.Key("disappearing_seconds").Int(c.disappearing_seconds);
  w.Key("participants").BeginArray();
  for (const auto& m : c.members) {
    w.BeginObject().Key("user_id").Id(m.user_id).Key("role").Str(m.role).EndObject();
  }
  w.EndArray();
  w.EndObject();
}

Status ReadForwardFrom(const json::Value& doc, uint64_t* chat_id, uint64_t* message_id) {
  *chat_id = *message_id = 0;
  auto it = doc.FindMember("forward_from");
  if (it == doc.MemberEnd() || it->value.IsNull()) return Status::Ok();
  if (!it->value.IsObject()) return BadRequest("field 'forward_from' must be an object {chat_id, message_id}");
  auto c = json::GetId(it->value, "chat_id");
  auto m = json::GetId(it->value, "message_id");
  if (!c.ok() || !m.ok()) return BadRequest("field 'forward_from' needs chat_id and message_id (decimal strings)");
  *chat_id = *c;
  *message_id = *m;
  return Status::Ok();
}

Status ReadEncrypted(const json::Value& doc, bool* encrypted) {
  *encrypted = false;
  auto it = doc.FindMember("encrypted");
  if (it == doc.MemberEnd() || it->value.IsNull()) return Status::Ok();
  if (!it->value.IsBool()) return BadRequest("field 'encrypted' must be true or false");
  *encrypted = it->value.GetBool();
  return Status::Ok();
}

std::string ErrorEvent(const Status& s, std::string_view ref) {
  JsonWriter w;
  w.BeginObject();
  w.Key("type").Str("error");
  w.Key("code").Str(s.wire_code());
  w.Key("message").Str(s.message());
  w.Key("ref").StrOrNull(ref);
  if ((s.code() == Code::kRateLimited || s.code() == Code::kUnavailable) && s.retry_after > 0) {
    w.Key("retry_after").Int(s.retry_after);
  }
  w.EndObject();
  return w.Take();
}

namespace {

std::string_view BodyStr(const json::Doc& b, const char* key) {
  auto it = b.FindMember(key);
  if (it == b.MemberEnd() || !it->value.IsString()) return {};
  return {it->value.GetString(), it->value.GetStringLength()};
}

uint64_t BodyId(const json::Doc& b, const char* key) {
  auto it = b.FindMember(key);
  if (it == b.MemberEnd()) return 0;
  return json::IdFromValue(it->value).value_or(0);
}

}  // namespace

std::string EventFor(const store::EnvelopeRow& row, store::Queries& q) {
  const crypto::Envelope& e = row.env;
  json::Doc body;
  if (e.body.empty() || !json::Parse(e.body, &body).ok()) return {};
  JsonWriter w;
  w.BeginObject();
  switch (e.kind) {
    case crypto::Kind::kMsgPost: {
      auto m = q.Message(e.id);
      if (!m.ok() || !m.value()) return {};
      store::MessageRow msg = std::move(**m);
      auto u = q.UserById(msg.sender_id);
      if (u.ok() && u.value()) {
        msg.sender_username = u.value()->username;
        msg.sender_relay = u.value()->relay;
        if (u.value()->privacy.profile_photo == "everyone") msg.sender_picture = u.value()->profile_picture_url;
      }
      w.Key("type").Str("new_message");
      w.Key("message");
      WriteMessage(w, msg);
      break;
    }
    case crypto::Kind::kMsgEdit:
      // The new text of a disappearing message that is due (not yet erased: the core's
      // sweep runs once a second) is not shown, as the message itself is not.
      if (int64_t at = store::ExpiresAt(e, body); at != 0 && at <= NowMs()) return {};
      w.Key("type").Str("message_edited");
      w.Key("chat_id").Id(e.chat_id);
      w.Key("message_id").Id(BodyId(body, "message_id"));
      w.Key("content").Str(BodyStr(body, "content"));
      w.Key("encrypted").Bool(body.HasMember("encrypted") && body["encrypted"].IsTrue());
      w.Key("edited_at").Time(e.created_at);
      w.Key("user_id").Id(e.author);
      break;
    case crypto::Kind::kMsgDelete:
      w.Key("type").Str("message_deleted");
      w.Key("chat_id").Id(e.chat_id);
      w.Key("message_id").Id(BodyId(body, "message_id"));
      w.Key("user_id").Id(e.author);
      break;
    case crypto::Kind::kReaction:
      w.Key("type").Str("reaction_updated");
      w.Key("chat_id").Id(e.chat_id);
      w.Key("message_id").Id(BodyId(body, "message_id"));
      w.Key("user_id").Id(e.author);
      w.Key("reaction_type").Str(BodyStr(body, "reaction_type"));
      w.Key("op").Str(BodyStr(body, "op"));
      break;
    case crypto::Kind::kReceipt: {
      // A reader who turned read receipts off (privacy) is shown to have the message only.
      bool read = BodyStr(body, "status") == "read";
      if (read) {
        auto u = q.UserById(e.author);
        if (u.ok() && u.value() && !u.value()->privacy.read_receipts) read = false;
      }
      w.Key("type").Str(read ? "message_read" : "message_delivered");
      w.Key("chat_id").Id(e.chat_id);
      w.Key("user_id").Id(e.author);
      w.Key("up_to_message_id").Id(BodyId(body, "up_to_message_id"));
      break;
    }
    case crypto::Kind::kUserProfile:
    case crypto::Kind::kPrivacy: {  // to the user's own sessions (system stream)
      auto u = q.UserById(e.author);
      if (!u.ok() || !u.value()) return {};
      w.Key("type").Str("profile_updated");
      w.Key("user");
      WriteOwnProfile(w, **u);
      break;
    }
    case crypto::Kind::kChatCreate: {
      auto c = q.Chat(e.chat_id, true);
      if (!c.ok() || !c.value()) return {};
      w.Key("type").Str("chat_created");
      w.Key("chat");
      WriteChat(w, **c);
      break;
    }
    case crypto::Kind::kChatUpdate:
    case crypto::Kind::kMemberRole: {
      auto c = q.Chat(e.chat_id, true);
      if (!c.ok() || !c.value()) return {};
      w.Key("type").Str("chat_updated");
      w.Key("chat_id").Id(e.chat_id);
      w.Key("chat");
      WriteChat(w, **c);
      break;
    }
    case crypto::Kind::kMemberAdd: {
      w.Key("type").Str("member_added");
      w.Key("chat_id").Id(e.chat_id);
      w.Key("user_ids").BeginArray();
      auto it = body.FindMember("user_ids");
      if (it != body.MemberEnd() && it->value.IsArray()) {
        for (const auto& v : it->value.GetArray()) {
          if (auto id = json::IdFromValue(v)) w.Id(*id);
        }
      }
      w.EndArray();
      w.Key("by").Id(e.author);
      break;
    }
    case crypto::Kind::kMemberRemove:
      w.Key("type").Str("member_removed");
      w.Key("chat_id").Id(e.chat_id);
      w.Key("user_id").Id(BodyId(body, "user_id"));
      w.Key("by").Id(e.author);
      break;
    case crypto::Kind::kHideForMe:  // to the user's own devices only
      w.Key("type").Str("message_hidden");
      w.Key("chat_id").Id(BodyId(body, "chat_id"));
      w.Key("message_id").Id(BodyId(body, "message_id"));
      break;
    case crypto::Kind::kBlock:
    case crypto::Kind::kUnblock:  // to the blocker's own devices only
      w.Key("type").Str("block_updated");
      w.Key("user_id").Id(BodyId(body, "user_id"));
      w.Key("blocked").Bool(e.kind == crypto::Kind::kBlock);
      break;
    case crypto::Kind::kContactRequest:
      w.Key("type").Str("contact_request");
      w.Key("request_id").Id(e.id);
      w.Key("from_user_id").Id(e.author);
      w.Key("to_user_id").Id(BodyId(body, "user_id"));
      w.Key("status").Str("pending");
      break;
    case crypto::Kind::kContactAccept:
    case crypto::Kind::kContactRemove: {
      uint64_t request_id = BodyId(body, "request_id");
      if (!request_id) {  // a contact ended
        w.Key("type").Str("contact_removed");
        w.Key("user_id").Id(BodyId(body, "user_id"));
        w.Key("by").Id(e.author);
        break;
      }
      auto rq = q.ContactRequest(request_id);
      if (!rq.ok() || !rq.value()) return {};
      const char* status = e.kind == crypto::Kind::kContactAccept ? "accepted"
                           : e.author == rq.value()->from_user    ? "cancelled"
                                                                  : "declined";
      w.Key("type").Str("contact_request_updated");
      w.Key("request_id").Id(request_id);
      w.Key("from_user_id").Id(rq.value()->from_user);
      w.Key("to_user_id").Id(rq.value()->to_user);
      w.Key("status").Str(status);
      break;
    }
    default:
      return {};
  }
  w.Key("cursor").Id(row.pos);
  w.EndObject();
  return w.Take();
}

}  // namespace chatd::events

