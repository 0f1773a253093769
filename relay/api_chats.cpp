// REST: chats, members, messages, reactions, receipts.
#include <algorithm>

#include "relay/api_util.h"
#include "relay/events.h"

namespace chatd::api {

namespace {

constexpr int kSearchPageMax = 100;

// An optional query parameter: a count in [1, max] (`def` if absent).
Result<int> LimitParam(const httplib::Request& req, int def, int max) {
  if (!req.has_param("limit")) return def;
  auto l = json::ParseId(req.get_param_value("limit"));
  if (!l || *l > static_cast<uint64_t>(max)) {
    return BadRequest("parameter 'limit' must be 1 to " + std::to_string(max));
  }
  return static_cast<int>(*l);
}

// An optional id query parameter (0 if absent).
Result<uint64_t> IdParam(const httplib::Request& req, const char* name, const char* what) {
  if (!req.has_param(name)) return uint64_t{0};
  auto id = json::ParseId(req.get_param_value(name));
  if (!id) return BadRequest(std::string("parameter '") + name + "' must be " + what);
  return *id;
}

std::string ChatJson(const store::ChatRow& chat) {
  json::JsonWriter w;
  events::WriteChat(w, chat);
  return w.Take();
}

Result<std::vector<uint64_t>> IdList(const json::Value& doc, const char* key, size_t max) {
  auto it = doc.FindMember(key);
  if (it == doc.MemberEnd() || !it->value.IsArray()) {
    return BadRequest(std::string("field '") + key + "' must be an array of user ids");
  }
  if (it->value.Size() > max) return BadRequest(std::string("field '") + key + "' holds too many ids");
  std::vector<uint64_t> out;
  for (const auto& v : it->value.GetArray()) {
    auto id = json::IdFromValue(v);
    if (!id) return BadRequest(std::string("field '") + key + "' must hold user ids (decimal strings)");
    out.push_back(*id);
  }
  return out;
}

const char* DeliveryStatus(uint64_t message_id, uint64_t min_delivered, uint64_t min_read) {
  if (message_id <= min_read) return "read";
  if (message_id <= min_delivered) return "delivered";
  return "sent";
}

// `send_at` of a send: 0 if absent or null, else its time (RFC 3339 UTC, ms).
Result<int64_t> SendAtOf(const json::Value& doc) {
  auto it = doc.FindMember("send_at");
  if (it == doc.MemberEnd() || it->value.IsNull()) return int64_t{0};
  int64_t at = 0;
  if (!it->value.IsString() || !ParseRfc3339Ms({it->value.GetString(), it->value.GetStringLength()}, &at) || at <= 0) {
    return BadRequest("field 'send_at' must be an RFC 3339 UTC time, e.g. 2026-01-15T10:35:00.000Z");
  }
  return at;
}

void WriteScheduled(json::JsonWriter& w, const store::ScheduledRow& r) {
  w.BeginObject();
  w.Key("scheduled_id").Id(r.scheduled_id).Key("chat_id").Id(r.chat_id).Key("send_at").Time(r.send_at);
  w.Key("status").Str(r.status).Key("created_at").Time(r.created_at);
  json::Doc req;  // what will be sent, as it was asked
  if (json::Parse(r.request, &req).ok() && req.IsObject()) {
    for (const char* k : {"message_type", "content"}) {
      auto v = json::GetString(req, k, SIZE_MAX);
      if (v.ok()) w.Key(k).Str(*v);
    }
    for (const char* k : {"reply_to_message_id", "file_id"}) {
      auto v = json::GetOptId(req, k);
      w.Key(k).IdOrNull(v.ok() ? v.value().value_or(0) : 0);
    }
  }
  w.Key("message_id").IdOrNull(r.message_id);
  if (r.status == "failed") w.Key("error").Str(r.error);
  w.EndObject();
}

template <typename T>
using CoreFn = std::function<Result<T>()>;

}  // namespace

void RegisterChatRoutes(httplib::Server& s, Ctx& ctx) {
  Ctx* c = &ctx;
  Core* core = c->d.core;

  s.Post("/api/v1/chats", [c, core](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    json::Doc doc;
    if (Status st = ParseBody(req, &doc); !st.ok()) return Fail(res, st);
    auto type = json::GetString(doc, "chat_type", 16);
    auto name = json::GetOptString(doc, "chat_name", 128);
    if (!type.ok()) return Fail(res, type.status());
    if (!name.ok()) return Fail(res, name.status());
    auto ids = IdList(doc, "participants", static_cast<size_t>(c->d.cfg->max_group_members) + 1);
    if (!ids.ok()) return Fail(res, ids.status());
    Actor actor{claims->user_id, claims->device_id};
    std::string t(*type), n(name.value().value_or(""));
    std::vector<uint64_t> parts = std::move(*ids);
    auto r = core->Call<ChatResult>([=]() { return core->OpCreateChat(actor, t, n, parts); });
    if (!r.ok()) return Fail(res, r.status());
    Ok(res, r->existed ? 200 : 201, ChatJson(r->chat));
  });

  s.Get("/api/v1/chats", [c](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    auto lease = c->d.store->readers().Acquire();
    if (!lease.ok()) return Fail(res, lease.status());
    auto chats = (*lease)->q().ChatsOf(claims->user_id);
    if (!chats.ok()) return Fail(res, chats.status());
    json::JsonWriter w;
    w.BeginObject().Key("chats").BeginArray();
    for (const auto& sum : *chats) {
      std::string chat = ChatJson(sum.chat);
      chat.pop_back();  // reopen the object to add the summary fields
      json::JsonWriter extra;
      extra.BeginObject().Key("last_message");
      if (sum.last_message) events::WriteMessage(extra, *sum.last_message);
      else extra.Null();
      extra.Key("unread_count").Int(sum.unread).EndObject();
      std::string e = extra.Take();
      chat += "," + e.substr(1);
      w.Raw(chat);
    }
    w.EndArray().EndObject();
    Ok(res, 200, w.View());
  });

  s.Get(R"(/api/v1/chats/([^/]+))", [c](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    auto id = PathId(req, 1, "chat_id");
    if (!id.ok()) return Fail(res, id.status());
    auto lease = c->d.store->readers().Acquire();
    if (!lease.ok()) return Fail(res, lease.status());
    if (Status st = RequireMember((*lease)->q(), *id, claims->user_id); !st.ok()) return Fail(res, st);
    auto chat = (*lease)->q().Chat(*id, true);
    if (!chat.ok()) return Fail(res, chat.status());
    if (!chat.value()) return Fail(res, NotFound("no such chat"));
    Ok(res, 200, ChatJson(**chat));
  });

  s.Patch(R"(/api/v1/chats/([^/]+))", [c, core](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    auto id = PathId(req, 1, "chat_id");
    if (!id.ok()) return Fail(res, id.status());
    json::Doc doc;
    if (Status st = ParseBody(req, &doc); !st.ok()) return Fail(res, st);
    auto name = json::GetOptString(doc, "chat_name", 128);
    auto desc = json::GetOptString(doc, "chat_description", 1024);
    auto dis = json::GetOptInt(doc, "disappearing_seconds", 0, 365LL * 86400);
    if (!name.ok()) return Fail(res, name.status());
    if (!desc.ok()) return Fail(res, desc.status());
    if (!dis.ok()) return Fail(res, dis.status());
    if (!name.value() && !desc.value() && !dis.value()) return Fail(res, BadRequest("nothing to change"));
    Actor actor{claims->user_id, claims->device_id};
    std::optional<std::string> n, d;
    if (name.value()) n = std::string(**name);
    if (desc.value()) d = std::string(**desc);
    std::optional<int64_t> ds = *dis;
    uint64_t chat_id = *id;
    auto r = core->Call<store::ChatRow>([=]() { return core->OpUpdateChat(actor, chat_id, n, d, ds); });
    if (!r.ok()) return Fail(res, r.status());
    Ok(res, 200, ChatJson(*r));
  });

  s.Post(R"(/api/v1/chats/([^/]+)/members)", [c, core](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    auto id = PathId(req, 1, "chat_id");
    if (!id.ok()) return Fail(res, id.status());
    json::Doc doc;
    if (Status st = ParseBody(req, &doc); !st.ok()) return Fail(res, st);
    auto ids = IdList(doc, "user_ids", static_cast<size_t>(c->d.cfg->max_group_members));
    if (!ids.ok()) return Fail(res, ids.status());
    Actor actor{claims->user_id, claims->device_id};
    uint64_t chat_id = *id;
    std::vector<uint64_t> users = std::move(*ids);
    auto r = core->Call<store::ChatRow>([=]() { return core->OpAddMembers(actor, chat_id, users); });
    if (!r.ok()) return Fail(res, r.status());
    Ok(res, 200, ChatJson(*r));
  });

  s.Delete(R"(/api/v1/chats/([^/]+)/members/([^/]+))", [c, core](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    auto id = PathId(req, 1, "chat_id");
    auto uid = PathId(req, 2, "user_id");
    if (!id.ok()) return Fail(res, id.status());
    if (!uid.ok()) return Fail(res, uid.status());
    Actor actor{claims->user_id, claims->device_id};
    uint64_t chat_id = *id, user_id = *uid;
    Status r = core->CallStatus([=] { return core->OpRemoveMember(actor, chat_id, user_id); });
    if (!r.ok()) return Fail(res, r);
    NoContent(res);
  });

  s.Patch(R"(/api/v1/chats/([^/]+)/members/([^/]+))", [c, core](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    auto id = PathId(req, 1, "chat_id");
    auto uid = PathId(req, 2, "user_id");
    if (!id.ok()) return Fail(res, id.status());
    if (!uid.ok()) return Fail(res, uid.status());
    json::Doc doc;
    if (Status st = ParseBody(req, &doc); !st.ok()) return Fail(res, st);
    auto role = json::GetString(doc, "role", 16);
    if (!role.ok()) return Fail(res, role.status());
    Actor actor{claims->user_id, claims->device_id};
    uint64_t chat_id = *id, user_id = *uid;
    std::string r0(*role);
    auto r = core->Call<store::ChatRow>([=]() { return core->OpSetRole(actor, chat_id, user_id, r0); });
    if (!r.ok()) return Fail(res, r.status());
    Ok(res, 200, ChatJson(*r));
  });

  s.Post(R"(/api/v1/chats/([^/]+)/messages)", [c, core](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    auto id = PathId(req, 1, "chat_id");
    if (!id.ok()) return Fail(res, id.status());
    json::Doc doc;
    if (Status st = ParseBody(req, &doc); !st.ok()) return Fail(res, st);
    auto type = json::GetOptString(doc, "message_type", 16);
    auto content = json::GetOptString(doc, "content", static_cast<size_t>(c->d.cfg->max_content_bytes));
    auto reply = json::GetOptId(doc, "reply_to_message_id");
    auto file = json::GetOptId(doc, "file_id");
    auto client = json::GetOptString(doc, "client_msg_id", 128);
    for (const Status* e : {&type.status(), &content.status(), &reply.status(), &file.status(), &client.status()}) {
      if (!e->ok()) return Fail(res, *e);
    }
    auto send_at = SendAtOf(doc);
    if (!send_at.ok()) return Fail(res, send_at.status());
    SendRequest sr;
    if (Status f = events::ReadForwardFrom(doc, &sr.forward_chat_id, &sr.forward_message_id); !f.ok()) {
      return Fail(res, f);
    }
    if (Status e = events::ReadEncrypted(doc, &sr.encrypted); !e.ok()) return Fail(res, e);
    sr.chat_id = *id;
    sr.message_type = type.value() ? std::string(**type) : "text";
    sr.content = content.value() ? std::string(**content) : std::string();
    sr.reply_to = reply.value().value_or(0);
    sr.file_id = file.value().value_or(0);
    if (client.value()) sr.client_key = "rest:" + std::string(**client);
    Actor actor{claims->user_id, claims->device_id};
    if (*send_at) {  // a scheduled message: 202, sent later by the core's timer
      int64_t at = *send_at;
      auto row = core->Call<store::ScheduledRow>([=]() { return core->OpSchedule(actor, sr, at); });
      if (!row.ok()) return Fail(res, row.status());
      json::JsonWriter w;
      WriteScheduled(w, *row);
      return Ok(res, 202, w.View());
    }
    auto r = core->Call<SendResult>([=]() { return core->OpSend(actor, sr); });
    if (!r.ok()) return Fail(res, r.status());
    const store::MessageRow& m = r->message;
    json::JsonWriter w;
    w.BeginObject();
    w.Key("message_id").Id(m.message_id).Key("chat_id").Id(m.chat_id).Key("sender_id").Id(m.sender_id);
    w.Key("message_type").Str(m.message_type).Key("content").Str(m.content);
    w.Key("reply_to_message_id").IdOrNull(m.reply_to).Key("file_id").IdOrNull(m.file_id);
    w.Key("created_at").Time(m.created_at).Key("delivery_status").Str("sent");
    w.Key("encrypted").Bool(m.encrypted);
    if (m.expires_at) w.Key("expires_at").Time(m.expires_at);
    if (m.forwarded_message_id) {
      w.Key("forwarded_from").BeginObject().Key("chat_id").Id(m.forwarded_chat_id);
      w.Key("message_id").Id(m.forwarded_message_id).EndObject();
    }
    w.Key("cursor").Id(r->cursor);
    w.EndObject();
    Ok(res, r->duplicate ? 200 : 201, w.View());
  });

  s.Get(R"(/api/v1/chats/([^/]+)/messages)", [c](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    auto id = PathId(req, 1, "chat_id");
    if (!id.ok()) return Fail(res, id.status());
    auto limit = LimitParam(req, std::min(50, c->d.cfg->history_page_max), c->d.cfg->history_page_max);
    if (!limit.ok()) return Fail(res, limit.status());
    auto before = IdParam(req, "before_id", "a message id");
    if (!before.ok()) return Fail(res, before.status());
    auto lease = c->d.store->readers().Acquire();
    if (!lease.ok()) return Fail(res, lease.status());
    store::Queries& q = (*lease)->q();
    if (Status st = RequireMember(q, *id, claims->user_id); !st.ok()) return Fail(res, st);
    auto page = q.History(*id, *before, *limit + 1, c->d.core->CommittedPos(), claims->user_id);
    if (!page.ok()) return Fail(res, page.status());
    bool has_more = static_cast<int>(page->size()) > *limit;
    if (has_more) page->pop_back();
    uint64_t min_delivered = UINT64_MAX, min_read = UINT64_MAX;
    auto receipts = q.Receipts(*id, claims->user_id);
    if (!receipts.ok()) return Fail(res, receipts.status());
    for (const auto& [uid, delivered, read] : *receipts) {
      if (uid == claims->user_id) continue;
      min_read = std::min(min_read, read);
      min_delivered = std::min(min_delivered, std::max(delivered, read));
    }
    json::JsonWriter w;
    w.BeginObject().Key("messages").BeginArray();
    for (const auto& m : *page) {
      if (m.sender_id != claims->user_id) {
        events::WriteMessage(w, m);
        continue;
      }
      json::JsonWriter one;
      events::WriteMessage(one, m);
      std::string js = one.Take();
      js.pop_back();
      js += ",\"delivery_status\":\"";
      js += DeliveryStatus(m.message_id, min_delivered, min_read);
      js += "\"}";
      w.Raw(js);
    }
    w.EndArray();
    w.Key("has_more").Bool(has_more);
    w.Key("next_before_id").IdOrNull(has_more && !page->empty() ? page->back().message_id : 0);
    w.EndObject();
    Ok(res, 200, w.View());
  });

  s.Get("/api/v1/scheduled", [c](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    auto lease = c->d.store->readers().Acquire();
    if (!lease.ok()) return Fail(res, lease.status());
    auto rows = (*lease)->q().ScheduledOf(claims->user_id);
    if (!rows.ok()) return Fail(res, rows.status());
    json::JsonWriter w;
    w.BeginObject().Key("scheduled").BeginArray();
    for (const auto& r : *rows) WriteScheduled(w, r);
    w.EndArray().EndObject();
    Ok(res, 200, w.View());
  });

  s.Delete(R"(/api/v1/scheduled/([^/]+))", [c, core](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    auto id = PathId(req, 1, "scheduled_id");
    if (!id.ok()) return Fail(res, id.status());
    Actor actor{claims->user_id, claims->device_id};
    uint64_t scheduled_id = *id;
    Status r = core->CallStatus([=] { return core->OpCancelScheduled(actor, scheduled_id); });
    if (!r.ok()) return Fail(res, r);
    NoContent(res);
  });

  s.Get(R"(/api/v1/chats/([^/]+)/messages/([^/]+)/thread)", [c](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    auto id = PathId(req, 1, "chat_id");
    if (!id.ok()) return Fail(res, id.status());
    auto mid = PathId(req, 2, "message_id");
    if (!mid.ok()) return Fail(res, mid.status());
    auto limit = LimitParam(req, std::min(50, c->d.cfg->history_page_max), c->d.cfg->history_page_max);
    if (!limit.ok()) return Fail(res, limit.status());
    auto after = IdParam(req, "after_id", "a message id");
    if (!after.ok()) return Fail(res, after.status());
    auto lease = c->d.store->readers().Acquire();
    if (!lease.ok()) return Fail(res, lease.status());
    store::Queries& q = (*lease)->q();
    if (Status st = RequireMember(q, *id, claims->user_id); !st.ok()) return Fail(res, st);
    auto parent = q.Message(*mid);
    if (!parent.ok()) return Fail(res, parent.status());
    if (!parent.value() || parent.value()->chat_id != *id) return Fail(res, NotFound("no such message in this chat"));
    auto page = q.Thread(*id, *mid, *after, *limit + 1, c->d.core->CommittedPos(), claims->user_id);
    if (!page.ok()) return Fail(res, page.status());
    bool has_more = static_cast<int>(page->size()) > *limit;
    if (has_more) page->pop_back();
    json::JsonWriter w;
    w.BeginObject().Key("message_id").Id(*mid).Key("messages").BeginArray();
    for (const auto& m : *page) events::WriteMessage(w, m);
    w.EndArray();
    w.Key("has_more").Bool(has_more);
    w.Key("next_after_id").IdOrNull(has_more && !page->empty() ? page->back().message_id : 0);
    w.EndObject();
    Ok(res, 200, w.View());
  });

  s.Patch(R"(/api/v1/chats/([^/]+)/messages/([^/]+))", [c, core](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    auto id = PathId(req, 1, "chat_id");
    auto mid = PathId(req, 2, "message_id");
    if (!id.ok()) return Fail(res, id.status());
    if (!mid.ok()) return Fail(res, mid.status());
    json::Doc doc;
    if (Status st = ParseBody(req, &doc); !st.ok()) return Fail(res, st);
    auto content = json::GetString(doc, "content", static_cast<size_t>(c->d.cfg->max_content_bytes));
    if (!content.ok()) return Fail(res, content.status());
    Actor actor{claims->user_id, claims->device_id};
    uint64_t chat_id = *id, message_id = *mid;
    std::string text(*content);
    auto r = core->Call<store::MessageRow>([=]() { return core->OpEdit(actor, chat_id, message_id, text); });
    if (!r.ok()) return Fail(res, r.status());
    json::JsonWriter w;
    events::WriteMessage(w, *r);
    Ok(res, 200, w.View());
  });

  s.Delete(R"(/api/v1/chats/([^/]+)/messages/([^/]+))", [c, core](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    auto id = PathId(req, 1, "chat_id");
    auto mid = PathId(req, 2, "message_id");
    if (!id.ok()) return Fail(res, id.status());
    if (!mid.ok()) return Fail(res, mid.status());
    std::string scope = req.has_param("for") ? req.get_param_value("for") : "everyone";
    if (scope != "everyone" && scope != "me") return Fail(res, BadRequest("parameter 'for' must be me or everyone"));
    Actor actor{claims->user_id, claims->device_id};
    uint64_t chat_id = *id, message_id = *mid;
    const bool for_me = scope == "me";
    Status r = core->CallStatus([=] {
      return for_me ? core->OpHideForMe(actor, chat_id, message_id) : core->OpDelete(actor, chat_id, message_id);
    });
    if (!r.ok()) return Fail(res, r);
    NoContent(res);
  });

  s.Post(R"(/api/v1/chats/([^/]+)/messages/([^/]+)/reactions)", [c, core](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    auto id = PathId(req, 1, "chat_id");
    auto mid = PathId(req, 2, "message_id");
    if (!id.ok()) return Fail(res, id.status());
    if (!mid.ok()) return Fail(res, mid.status());
    json::Doc doc;
    if (Status st = ParseBody(req, &doc); !st.ok()) return Fail(res, st);
    auto reaction = json::GetString(doc, "reaction_type", 32);
    if (!reaction.ok()) return Fail(res, reaction.status());
    Actor actor{claims->user_id, claims->device_id};
    uint64_t chat_id = *id, message_id = *mid;
    std::string r0(*reaction);
    Status r = core->CallStatus([=] { return core->OpReact(actor, chat_id, message_id, r0, true); });
    if (!r.ok()) return Fail(res, r);
    json::JsonWriter w;
    w.BeginObject().Key("message_id").Id(message_id).Key("reaction_type").Str(r0).EndObject();
    Ok(res, 201, w.View());
  });

  s.Delete(R"(/api/v1/chats/([^/]+)/messages/([^/]+)/reactions/([^/]+))",
           [c, core](const httplib::Request& req, httplib::Response& res) {
             auto claims = Authenticate(*c, req);
             if (!claims.ok()) return Fail(res, claims.status());
             auto id = PathId(req, 1, "chat_id");
             auto mid = PathId(req, 2, "message_id");
             if (!id.ok()) return Fail(res, id.status());
             if (!mid.ok()) return Fail(res, mid.status());
             std::string r0 = httplib::detail::decode_url(req.matches[3].str(), false);
             Actor actor{claims->user_id, claims->device_id};
             uint64_t chat_id = *id, message_id = *mid;
             Status r = core->CallStatus([=] { return core->OpReact(actor, chat_id, message_id, r0, false); });
             if (!r.ok()) return Fail(res, r);
             NoContent(res);
           });

  s.Get(R"(/api/v1/chats/([^/]+)/messages/([^/]+)/receipts)", [c](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    auto id = PathId(req, 1, "chat_id");
    auto mid = PathId(req, 2, "message_id");
    if (!id.ok()) return Fail(res, id.status());
    if (!mid.ok()) return Fail(res, mid.status());
    auto lease = c->d.store->readers().Acquire();
    if (!lease.ok()) return Fail(res, lease.status());
    store::Queries& q = (*lease)->q();
    if (Status st = RequireMember(q, *id, claims->user_id); !st.ok()) return Fail(res, st);
    auto msg = q.Message(*mid);
    if (!msg.ok()) return Fail(res, msg.status());
    if (!msg.value() || msg.value()->chat_id != *id) return Fail(res, NotFound("no such message in this chat"));
    auto receipts = q.Receipts(*id, claims->user_id);
    if (!receipts.ok()) return Fail(res, receipts.status());
    json::JsonWriter w;
    w.BeginObject().Key("delivered").BeginArray();
    for (const auto& [uid, delivered, read] : *receipts) {
      if (std::max(delivered, read) >= *mid) w.Id(uid);
    }
    w.EndArray().Key("read").BeginArray();
    for (const auto& [uid, delivered, read] : *receipts) {
      if (read >= *mid) w.Id(uid);
    }
    w.EndArray().EndObject();
    Ok(res, 200, w.View());
  });

  // Full-text search over the messages of my chats (store/search.h), newest first.
  s.Get("/api/v1/search", [c](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    if (!c->d.search) return Fail(res, NotFound("full-text search is turned off on this relay (store.search)"));
    if (!req.has_param("q")) return Fail(res, BadRequest("parameter 'q' is required"));
    auto match = store::SearchMatch(req.get_param_value("q"));
    if (!match.ok()) return Fail(res, match.status());
    auto limit = LimitParam(req, 20, kSearchPageMax);
    if (!limit.ok()) return Fail(res, limit.status());
    auto chat_id = IdParam(req, "chat_id", "a chat id");
    if (!chat_id.ok()) return Fail(res, chat_id.status());
    auto before = IdParam(req, "before_id", "a message id");
    if (!before.ok()) return Fail(res, before.status());
    auto lease = c->d.store->readers().Acquire();
    if (!lease.ok()) return Fail(res, lease.status());
    store::Queries& q = (*lease)->q();
    if (*chat_id) {
      if (Status st = RequireMember(q, *chat_id, claims->user_id); !st.ok()) return Fail(res, st);
    }
    auto page = q.Search(claims->user_id, *match, *chat_id, *before, *limit);
    if (!page.ok()) return Fail(res, page.status());
    json::JsonWriter w;
    w.BeginObject().Key("results").BeginArray();
    for (const store::SearchHit& h : page->hits) {
      w.BeginObject().Key("message_id").Id(h.message_id).Key("chat_id").Id(h.chat_id);
      w.Key("sender_id").Id(h.sender_id).Key("content").Str(h.content).Key("snippet").Str(h.snippet);
      w.Key("created_at").Time(h.created_at).EndObject();
    }
    w.EndArray().Key("has_more").Bool(page->has_more);
    w.Key("next_before_id").IdOrNull(page->next_before_id).EndObject();
    Ok(res, 200, w.View());
  });
}

}  // namespace chatd::api
