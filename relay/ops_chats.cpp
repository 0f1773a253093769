// Core operations on chats and membership (core thread only).
#include <algorithm>

#include "base/json.h"
#include "relay/core.h"

namespace chatd {

namespace {

bool ValidRole(const std::string& r) { return r == "admin" || r == "moderator" || r == "member"; }

}  // namespace

// The user's privacy setting `groups`: who may put them in a group (at its creation or
// later). Checked where the change is made; peers apply member_add as they get it.
Status Core::CheckMayAddToGroup(uint64_t actor, const store::UserRow& u) {
  const std::string& who = u.privacy.groups;
  if (who == "everyone" || actor == u.user_id) return Status::Ok();
  if (who == "contacts") {
    auto c = store_.writer().IsContact(actor, u.user_id);
    if (!c.ok()) return c.status();
    if (*c) return Status::Ok();
  }
  return Status(Code::kForbidden,
                "user " + std::to_string(u.user_id) + " lets " +
                    (who == "contacts" ? "only their contacts" : "nobody") + " add them to groups",
                "privacy_restricted");
}

Status Core::OpCheckMember(const Actor& actor, uint64_t chat_id) {
  auto role = RoleOrNotMember(chat_id, actor.user_id);
  return role.ok() ? Status::Ok() : role.status();
}

Result<ChatResult> Core::OpCreateChat(const Actor& actor, const std::string& chat_type,
                                      const std::string& chat_name, std::vector<uint64_t> participants) {
  auto& w = store_.writer();
  std::sort(participants.begin(), participants.end());
  participants.erase(std::unique(participants.begin(), participants.end()), participants.end());
  participants.erase(std::remove(participants.begin(), participants.end(), actor.user_id), participants.end());
  if (chat_type != "direct" && chat_type != "group") {
    return BadRequest("field 'chat_type' must be \"direct\" or \"group\"");
  }
  if (chat_type == "direct" && participants.size() != 1) {
    return BadRequest("a direct chat has exactly one other participant");
  }
  if (participants.size() + 1 > static_cast<size_t>(cfg_.max_group_members)) {
    return Status(Code::kBadRequest,
                  "a group holds at most " + std::to_string(cfg_.max_group_members) + " members",
                  "too_many_members");
  }
  for (uint64_t uid : participants) {
    auto u = w.UserById(uid);
    if (!u.ok()) return u.status();
    if (!u.value() || u.value()->disabled) return NotFound("no such user: " + std::to_string(uid));
    if (chat_type == "group") {
      if (Status s = CheckMayAddToGroup(actor.user_id, *u.value()); !s.ok()) return s;
    }
  }
  std::string direct_key;
  if (chat_type == "direct") {
    uint64_t a = std::min(actor.user_id, participants[0]), b = std::max(actor.user_id, participants[0]);
    direct_key = std::to_string(a) + ":" + std::to_string(b);
    auto existing = w.DirectChat(direct_key);
    if (!existing.ok()) return existing.status();
    if (existing.value()) {
      auto chat = w.Chat(*existing.value(), true);
      if (!chat.ok()) return chat.status();
      if (chat.value()) return ChatResult{std::move(*chat.value()), true};
    }
    if (Status s = CheckNotBlocked(actor.user_id, participants[0]); !s.ok()) return s;
  }
  crypto::Envelope env;
  env.id = NewId();
  env.chat_id = env.id;
  env.kind = crypto::Kind::kChatCreate;
  env.author = actor.user_id;
  env.device = std::to_string(actor.device_id);
  json::JsonWriter body;
  body.BeginObject();
  body.Key("chat_type").Str(chat_type);
  body.Key("chat_name").Str(chat_name);
  if (!direct_key.empty()) body.Key("direct_key").Str(direct_key);
  body.Key("members").BeginArray();
  body.BeginObject().Key("user_id").Id(actor.user_id).Key("role").Str("admin").EndObject();
  for (uint64_t uid : participants) {
    body.BeginObject().Key("user_id").Id(uid).Key("role").Str(chat_type == "direct" ? "admin" : "member").EndObject();
  }
  body.EndArray();
  body.EndObject();
  env.body = body.Take();
  auto pos = Emit(env);
  if (!pos.ok()) return pos.status();
  InvalidateMembers(env.chat_id);
  Publish(env, *pos, 0);
  auto chat = w.Chat(env.chat_id, true);
  if (!chat.ok()) return chat.status();
  if (!chat.value()) return Internal("chat vanished after create");
  return ChatResult{std::move(*chat.value()), false};
}

Result<store::ChatRow> Core::OpUpdateChat(const Actor& actor, uint64_t chat_id, const std::optional<std::string>& name,
                                          const std::optional<std::string>& description,
                                          std::optional<int64_t> disappearing) {
  auto role = RoleOrNotMember(chat_id, actor.user_id);
  if (!role.ok()) return role.status();
  if (*role != "admin") return Forbidden("only a chat admin can change the chat");
  json::JsonWriter body;
  body.BeginObject();
  if (name) body.Key("chat_name").Str(*name);
  if (description) body.Key("chat_description").Str(*description);
  if (disappearing) body.Key("disappearing_seconds").Int(*disappearing);
  body.EndObject();
  crypto::Envelope env;
  env.chat_id = chat_id;
  env.kind = crypto::Kind::kChatUpdate;
  env.author = actor.user_id;
  env.device = std::to_string(actor.device_id);
  env.body = body.Take();
  auto pos = Emit(env);
  if (!pos.ok()) return pos.status();
  InvalidateTimer(chat_id);
  Publish(env, *pos, 0);
  auto chat = store_.writer().Chat(chat_id, true);
  if (!chat.ok()) return chat.status();
  return std::move(*chat.value());
}

Result<store::ChatRow> Core::OpAddMembers(const Actor& actor, uint64_t chat_id, const std::vector<uint64_t>& users) {
  auto& w = store_.writer();
  auto role = RoleOrNotMember(chat_id, actor.user_id);
  if (!role.ok()) return role.status();
  auto chat = w.Chat(chat_id, true);
  if (!chat.ok()) return chat.status();
  if (chat.value()->chat_type != "group") return BadRequest("members can only be added to a group");
  if (*role != "admin" && *role != "moderator") return Forbidden("only an admin or moderator can add members");
  std::vector<uint64_t> add;
  for (uint64_t uid : users) {
    bool present = std::any_of(chat.value()->members.begin(), chat.value()->members.end(),
                               [&](const store::MemberRow& m) { return m.user_id == uid; });
    if (present || std::find(add.begin(), add.end(), uid) != add.end()) continue;
    auto u = w.UserById(uid);
    if (!u.ok()) return u.status();
    if (!u.value() || u.value()->disabled) return NotFound("no such user: " + std::to_string(uid));
    if (Status s = CheckMayAddToGroup(actor.user_id, *u.value()); !s.ok()) return s;
    add.push_back(uid);
  }
  if (chat.value()->members.size() + add.size() > static_cast<size_t>(cfg_.max_group_members)) {
    return Status(Code::kBadRequest,
                  "a group holds at most " + std::to_string(cfg_.max_group_members) + " members",
                  "too_many_members");
  }
  if (add.empty()) return std::move(*chat.value());
  json::JsonWriter body;
  body.BeginObject().Key("user_ids").BeginArray();
  for (uint64_t uid : add) body.Id(uid);
  body.EndArray().EndObject();
  crypto::Envelope env;
  env.chat_id = chat_id;
  env.kind = crypto::Kind::kMemberAdd;
  env.author = actor.user_id;
  env.device = std::to_string(actor.device_id);
  env.body = body.Take();
  auto pos = Emit(env);
  if (!pos.ok()) return pos.status();
  InvalidateMembers(chat_id);
  Publish(env, *pos, 0);
  auto after = w.Chat(chat_id, true);
  if (!after.ok()) return after.status();
  return std::move(*after.value());
}

Status Core::OpRemoveMember(const Actor& actor, uint64_t chat_id, uint64_t user_id) {
  auto role = RoleOrNotMember(chat_id, actor.user_id);
  if (!role.ok()) return role.status();
  if (user_id != actor.user_id && *role != "admin") return Forbidden("only an admin can remove other members");
  auto target = store_.writer().RoleOf(chat_id, user_id);
  if (!target.ok()) return target.status();
  if (!target.value()) return NotFound("that user is not a member of this chat");
  json::JsonWriter body;
  body.BeginObject().Key("user_id").Id(user_id).EndObject();
  crypto::Envelope env;
  env.chat_id = chat_id;
  env.kind = crypto::Kind::kMemberRemove;
  env.author = actor.user_id;
  env.device = std::to_string(actor.device_id);
  env.body = body.Take();
  auto pos = Emit(env);
  if (!pos.ok()) return pos.status();
  InvalidateMembers(chat_id);
  Publish(env, *pos, 0, user_id);
  return Status::Ok();
}

Result<store::ChatRow> Core::OpSetRole(const Actor& actor, uint64_t chat_id, uint64_t user_id, const std::string& role) {
  if (!ValidRole(role)) return BadRequest("field 'role' must be admin, moderator or member");
  auto mine = RoleOrNotMember(chat_id, actor.user_id);
  if (!mine.ok()) return mine.status();
  if (*mine != "admin") return Forbidden("only an admin can change roles");
  auto target = store_.writer().RoleOf(chat_id, user_id);
  if (!target.ok()) return target.status();
  if (!target.value()) return NotFound("that user is not a member of this chat");
  json::JsonWriter body;
  body.BeginObject().Key("user_id").Id(user_id).Key("role").Str(role).EndObject();
  crypto::Envelope env;
  env.chat_id = chat_id;
  env.kind = crypto::Kind::kMemberRole;
  env.author = actor.user_id;
  env.device = std::to_string(actor.device_id);
  env.body = body.Take();
  auto pos = Emit(env);
  if (!pos.ok()) return pos.status();
  Publish(env, *pos, 0);
  auto chat = store_.writer().Chat(chat_id, true);
  if (!chat.ok()) return chat.status();
  return std::move(*chat.value());
}

}  // namespace chatd
