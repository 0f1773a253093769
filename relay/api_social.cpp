// REST: blocks, contacts and reports (PROTOCOL.md). Changes go through the core
// (relay/ops_social.cpp); lists are read from a read connection.
#include <algorithm>

#include "relay/api_util.h"
#include "relay/events.h"

namespace chatd::api {

namespace {

// The other user's profile (as `me` may see it) inside an object the caller opened, under "user"; just
// the id if this relay does not know the user (yet).
void WriteOtherUser(json::JsonWriter& w, store::Queries& q, uint64_t user_id, uint64_t me) {
  auto u = q.UserById(user_id);
  w.Key("user");
  if (u.ok() && u.value()) {
    events::WriteUserFor(w, **u, me, q);
  } else {
    w.BeginObject().Key("user_id").Id(user_id).EndObject();
  }
}

void WriteRequest(json::JsonWriter& w, store::Queries& q, const store::ContactRequestRow& r, uint64_t me) {
  bool incoming = r.to_user == me;
  w.BeginObject();
  w.Key("request_id").Id(r.request_id);
  w.Key("from_user_id").Id(r.from_user);
  w.Key("to_user_id").Id(r.to_user);
  w.Key("direction").Str(incoming ? "incoming" : "outgoing");
  w.Key("status").Str(r.status);
  w.Key("created_at").Time(r.created_at);
  WriteOtherUser(w, q, incoming ? r.from_user : r.to_user, me);
  w.EndObject();
}

// A GET that lists users related to me (blocked, contacts):
// {"<key>": [{"user_id", "<time_key>", "user"}…]}, from rows with user_id and since.
template <typename Row>
httplib::Server::Handler UserListRoute(Ctx* c, const char* key, const char* time_key,
                                       Result<std::vector<Row>> (store::Queries::*list)(uint64_t)) {
  return [c, key, time_key, list](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    auto lease = c->d.store->readers().Acquire();
    if (!lease.ok()) return Fail(res, lease.status());
    store::Queries& q = (*lease)->q();
    auto rows = (q.*list)(claims->user_id);
    if (!rows.ok()) return Fail(res, rows.status());
    json::JsonWriter w;
    w.BeginObject().Key(key).BeginArray();
    for (const Row& r : *rows) {
      w.BeginObject().Key("user_id").Id(r.user_id).Key(time_key).Time(r.since);
      WriteOtherUser(w, q, r.user_id, claims->user_id);
      w.EndObject();
    }
    w.EndArray().EndObject();
    Ok(res, 200, w.View());
  };
}

Result<uint64_t> BodyUserId(const httplib::Request& req) {
  json::Doc doc;
  if (Status st = ParseBody(req, &doc); !st.ok()) return st;
  return json::GetId(doc, "user_id");
}

}  // namespace

void RegisterSocialRoutes(httplib::Server& s, Ctx& ctx) {
  Ctx* c = &ctx;
  Core* core = c->d.core;

  s.Post("/api/v1/blocks", [c, core](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    auto uid = BodyUserId(req);
    if (!uid.ok()) return Fail(res, uid.status());
    Actor actor{claims->user_id, claims->device_id};
    uint64_t user_id = *uid;
    auto b = core->Call<store::BlockRow>([=]() { return core->OpBlock(actor, user_id, true); });
    if (!b.ok()) return Fail(res, b.status());
    json::JsonWriter w;
    w.BeginObject().Key("user_id").Id(b->user_id).Key("blocked_at").Time(b->since).EndObject();
    Ok(res, 201, w.View());
  });

  s.Delete(R"(/api/v1/blocks/([^/]+))", [c, core](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    auto uid = PathId(req, 1, "user_id");
    if (!uid.ok()) return Fail(res, uid.status());
    Actor actor{claims->user_id, claims->device_id};
    uint64_t user_id = *uid;
    auto b = core->Call<store::BlockRow>([=]() { return core->OpBlock(actor, user_id, false); });
    if (!b.ok()) return Fail(res, b.status());
    NoContent(res);
  });

  s.Get("/api/v1/blocks", UserListRoute(c, "blocks", "blocked_at", &store::Queries::BlocksOf));

  s.Post("/api/v1/contacts/requests", [c, core](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    auto uid = BodyUserId(req);
    if (!uid.ok()) return Fail(res, uid.status());
    Actor actor{claims->user_id, claims->device_id};
    uint64_t user_id = *uid;
    auto r = core->Call<ContactRequestResult>([=]() { return core->OpContactRequest(actor, user_id); });
    if (!r.ok()) return Fail(res, r.status());
    auto lease = c->d.store->readers().Acquire();
    if (!lease.ok()) return Fail(res, lease.status());
    json::JsonWriter w;
    WriteRequest(w, (*lease)->q(), r->request, claims->user_id);
    // 201: a new request; 200: the same one already pending, or theirs, now accepted.
    Ok(res, r->existed || r->request.status != "pending" ? 200 : 201, w.View());
  });

  s.Get("/api/v1/contacts/requests", [c](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    auto lease = c->d.store->readers().Acquire();
    if (!lease.ok()) return Fail(res, lease.status());
    store::Queries& q = (*lease)->q();
    auto list = q.PendingRequestsOf(claims->user_id);
    if (!list.ok()) return Fail(res, list.status());
    json::JsonWriter w;
    w.BeginObject().Key("requests").BeginArray();
    for (const auto& r : *list) WriteRequest(w, q, r, claims->user_id);
    w.EndArray().EndObject();
    Ok(res, 200, w.View());
  });

  auto decide = [c, core](bool accept) {
    return [c, core, accept](const httplib::Request& req, httplib::Response& res) {
      auto claims = Authenticate(*c, req);
      if (!claims.ok()) return Fail(res, claims.status());
      auto rid = PathId(req, 1, "request_id");
      if (!rid.ok()) return Fail(res, rid.status());
      Actor actor{claims->user_id, claims->device_id};
      uint64_t request_id = *rid;
      Status r = core->CallStatus([=] { return core->OpDecideContact(actor, request_id, accept); });
      if (!r.ok()) return Fail(res, r);
      auto lease = c->d.store->readers().Acquire();
      if (!lease.ok()) return Fail(res, lease.status());
      auto row = (*lease)->q().ContactRequest(request_id);
      if (!row.ok()) return Fail(res, row.status());
      if (!row.value()) return Fail(res, Internal("contact request vanished"));
      json::JsonWriter w;
      WriteRequest(w, (*lease)->q(), **row, claims->user_id);
      Ok(res, 200, w.View());
    };
  };
  s.Post(R"(/api/v1/contacts/requests/([^/]+)/accept)", decide(true));
  s.Post(R"(/api/v1/contacts/requests/([^/]+)/decline)", decide(false));  // the sender: cancel

  s.Get("/api/v1/contacts", UserListRoute(c, "contacts", "since", &store::Queries::ContactsOf));

  // Presence of the users named in user_ids (at most 200, comma-separated), or of every
  // contact and chat partner whose privacy lets me see it.
  s.Get("/api/v1/presence", [c, core](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    std::vector<uint64_t> ids;
    std::string list = req.get_param_value("user_ids");
    for (size_t at = 0; !list.empty() && at <= list.size();) {
      size_t comma = std::min(list.find(',', at), list.size());
      auto id = json::ParseId(std::string_view(list).substr(at, comma - at));
      if (!id) return Fail(res, BadRequest("parameter 'user_ids' must be user ids separated by commas"));
      if (std::find(ids.begin(), ids.end(), *id) == ids.end()) ids.push_back(*id);
      if (ids.size() > 200) return Fail(res, BadRequest("parameter 'user_ids' names more than 200 users"));
      at = comma + 1;
    }
    // Whom I may see: who shares a chat with me or is my contact, as each one's privacy
    // setting last_seen allows. Decided here, on a read connection; the core only tells
    // the presence of those.
    const uint64_t viewer = claims->user_id;
    auto lease = c->d.store->readers().Acquire();
    if (!lease.ok()) return Fail(res, lease.status());
    store::Queries& q = (*lease)->q();
    auto audience = q.PresenceAudience(viewer);
    auto contacts = q.ContactsOf(viewer);
    if (!audience.ok()) return Fail(res, audience.status());
    if (!contacts.ok()) return Fail(res, contacts.status());
    std::sort(audience->begin(), audience->end());  // UNION's order is SQLite's to choose
    auto in = [](const std::vector<uint64_t>& sorted, uint64_t id) {
      return std::binary_search(sorted.begin(), sorted.end(), id);
    };
    std::vector<uint64_t> contact_ids;
    for (const auto& r : *contacts) contact_ids.push_back(r.user_id);
    std::sort(contact_ids.begin(), contact_ids.end());
    const bool listed = !ids.empty();
    if (!listed) ids = *audience;
    std::vector<uint64_t> visible;
    for (uint64_t uid : ids) {
      bool may = uid == viewer;
      if (!may && in(*audience, uid)) {
        auto u = q.UserById(uid);
        if (!u.ok()) return Fail(res, u.status());
        may = u.value() && store::Privacy::Allows(u.value()->privacy.last_seen, in(contact_ids, uid));
      }
      if (may) visible.push_back(uid);
    }
    auto now = core->Call<std::vector<Core::PresenceNow>>(
        [=]() -> Result<std::vector<Core::PresenceNow>> { return core->PresenceOfUsers(visible); });
    if (!now.ok()) return Fail(res, now.status());
    json::JsonWriter w;
    w.BeginObject().Key("presence").BeginArray();
    size_t next = 0;  // visible is in the order of ids
    for (uint64_t uid : ids) {
      bool shown = next < visible.size() && visible[next] == uid;
      if (!shown && !listed) continue;  // the whole list: only those I may see
      w.BeginObject().Key("user_id").Id(uid);
      if (shown) {
        const Core::PresenceNow& p = (*now)[next++];
        w.Key("status").Str(p.status).Key("last_seen");
        if (p.last_seen)
          w.Time(p.last_seen);
        else
          w.Null();
      } else {
        w.Key("status").Str("unknown").Key("last_seen").Null();
      }
      w.EndObject();
    }
    w.EndArray().EndObject();
    Ok(res, 200, w.View());
  });

  s.Delete(R"(/api/v1/contacts/([^/]+))", [c, core](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    auto uid = PathId(req, 1, "user_id");
    if (!uid.ok()) return Fail(res, uid.status());
    Actor actor{claims->user_id, claims->device_id};
    uint64_t user_id = *uid;
    Status r = core->CallStatus([=] { return core->OpRemoveContact(actor, user_id); });
    if (!r.ok()) return Fail(res, r);
    NoContent(res);
  });

  s.Post("/api/v1/reports", [c, core](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    json::Doc doc;
    if (Status st = ParseBody(req, &doc); !st.ok()) return Fail(res, st);
    auto mid = json::GetOptId(doc, "message_id");
    auto uid = json::GetOptId(doc, "user_id");
    auto reason = json::GetString(doc, "reason", 2000);
    for (const Status* e : {&mid.status(), &uid.status(), &reason.status()}) {
      if (!e->ok()) return Fail(res, *e);
    }
    Actor actor{claims->user_id, claims->device_id};
    uint64_t message_id = mid.value().value_or(0), user_id = uid.value().value_or(0);
    std::string why(*reason);
    auto r = core->Call<store::ReportRow>([=]() { return core->OpReport(actor, user_id, message_id, why); });
    if (!r.ok()) return Fail(res, r.status());
    json::JsonWriter w;
    w.BeginObject().Key("report_id").Id(r->report_id).Key("status").Str(r->status);
    w.Key("created_at").Time(r->created_at).EndObject();
    Ok(res, 201, w.View());
  });
}

}  // namespace chatd::api
