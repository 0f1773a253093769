// The admin API (/admin/v1/*) on its own listener, for chatctl: status, federation
// status and reload, ending a restored store's wait for its peers, users (list, show,
// disable, enable), lifting a quarantine, reports (list, resolve). Every route wants
// `Authorization: Bearer <admin token>` (compared in constant time). Reads go through the
// reader pool, changes through Core::Call (answered after the commit).
#include <httplib.h>

#include "crypto/bytes.h"
#include "crypto/envelope.h"
#include "relay/api.h"
#include "relay/api_util.h"
#include "relay/events.h"

namespace chatd {

namespace {

// A user as the operator sees it: the public profile plus the account state.
void WriteAdminUser(json::JsonWriter& w, const store::UserRow& u, const std::string& email, int64_t devices) {
  w.BeginObject();
  events::WriteUserFields(w, u);
  w.Key("disabled").Bool(u.disabled);
  if (!email.empty()) w.Key("email").Str(email);
  if (devices >= 0) w.Key("active_devices").Int(devices);
  w.EndObject();
}

// "alice" (this relay's) or "alice@eu1" → the handle; bad_request for anything else.
Result<std::string> HandleOf(const std::string& name, const std::string& relay) {
  if (name.empty() || name.size() > 100) return BadRequest("a user name is 1 to 100 characters");
  std::string h;
  for (char c : name) {
    char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!((l >= 'a' && l <= 'z') || (l >= '0' && l <= '9') || l == '_' || l == '.' || l == '@' || l == '-')) {
      return BadRequest("a user name holds only a-z, 0-9, '_', '.', '-' and '@'");
    }
    h.push_back(l);
  }
  if (h.find('@') == std::string::npos) h += "@" + relay;
  return h;
}

void WriteReport(json::JsonWriter& w, const store::ReportRow& r) {
  w.BeginObject();
  w.Key("report_id").Id(r.report_id);
  w.Key("reporter_id").Id(r.reporter);
  w.Key("user_id").IdOrNull(r.user_id);
  w.Key("chat_id").IdOrNull(r.chat_id);
  w.Key("message_id").IdOrNull(r.message_id);
  w.Key("reason").Str(r.reason);
  w.Key("created_at").Time(r.created_at);
  w.Key("status").Str(r.status);
  if (r.resolved_at) w.Key("resolved_at").Time(r.resolved_at).Key("resolution").Str(r.resolution);
  w.EndObject();
}

// The own-log recovery (relay/recovery.h) for the operator: null when the relay originates.
void WriteRecovery(json::JsonWriter& w, const OwnLog::Snapshot& r) {
  if (!r.holding) {
    w.Null();
    return;
  }
  w.BeginObject();
  w.Key("reason").Str(r.reason);
  w.Key("own_seq").Int(static_cast<int64_t>(r.own));
  if (r.target) {
    w.Key("target_seq").Int(static_cast<int64_t>(r.target)).Key("from_peer").Str(r.target_peer);
  } else {
    w.Key("target_seq").Null().Key("from_peer").Null();
  }
  w.Key("restored_wait").Bool(r.waiting);
  w.Key("waiting_for").BeginArray();
  for (const auto& p : r.waiting_for) w.Str(p);
  w.EndArray();
  if (r.waiting) {
    w.Key("wait_until").Time(r.wait_until_ms);
  } else {
    w.Key("wait_until").Null();
  }
  w.EndObject();
}

}  // namespace

void Api::RegisterAdminRoutes() {
  httplib::Server& s = *admin_;
  auto authorized = [this](const httplib::Request& req, httplib::Response& res) {
    std::string h = req.get_header_value("Authorization");
    std::string expected = "Bearer " + d_.admin_token;
    if (d_.admin_token.empty() || !crypto::ConstantTimeEqual(h, expected)) {
      api::Fail(res, Unauthorized("admin token required"));
      return false;
    }
    return true;
  };
  s.Get("/admin/v1/federation", [this, authorized](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    api::Ok(res, 200, d_.gateway->FederationStatus());
  });
  s.Delete(R"(/admin/v1/federation/quarantine/([^/]+))",
           [this, authorized](const httplib::Request& req, httplib::Response& res) {
             if (!authorized(req, res)) return;
             std::string origin = req.matches[1].str();
             if (!crypto::IsValidRelayName(origin)) {
               return api::Fail(res, BadRequest("an origin is a relay name: 1 to 32 of a-z, 0-9 and '-'"));
             }
             Core* core = d_.core;
             Status r = core->CallStatus([core, origin] { return core->OpLiftQuarantine(origin); });
             if (!r.ok()) return api::Fail(res, r);
             json::JsonWriter w;
             w.BeginObject().Key("origin").Str(origin).Key("quarantined").Bool(false).EndObject();
             api::Ok(res, 200, w.View());
           });
  s.Post("/admin/v1/federation/recovery/release",
         [this, authorized](const httplib::Request& req, httplib::Response& res) {
           if (!authorized(req, res)) return;
           Core* core = d_.core;
           auto r = core->Call<bool>([core] { return core->OpReleaseRecovery(); });
           if (!r.ok()) return api::Fail(res, r.status());
           json::JsonWriter w;
           w.BeginObject().Key("released").Bool(*r).Key("recovery");
           WriteRecovery(w, core->RecoveryStatus());
           w.EndObject();
           api::Ok(res, 200, w.View());
         });
  s.Post("/admin/v1/reload", [this, authorized](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    Status st = d_.reload ? d_.reload() : Internal("reload is not available");
    if (!st.ok()) return api::Fail(res, st);
    api::Ok(res, 200, "{\"reloaded\":true}");
  });
  s.Get("/admin/v1/status", [this, authorized](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    auto lease = d_.store->readers().Acquire();
    if (!lease.ok()) return api::Fail(res, lease.status());
    auto count = (*lease)->q().CountEnvelopes();
    auto vec = (*lease)->q().Vector();
    if (!count.ok()) return api::Fail(res, count.status());
    json::JsonWriter w;
    w.BeginObject();
    w.Key("relay").Str(d_.cfg->relay_name);
    w.Key("node_id").Int(d_.cfg->node_id);
    w.Key("ready").Bool(d_.ready->load() && !d_.core->Recovering());  // as /readyz
    w.Key("envelopes").Int(static_cast<int64_t>(*count));
    w.Key("sessions").Int(static_cast<int64_t>(d_.gateway->stats().sessions.load()));
    w.Key("wal_frames").Int(static_cast<int64_t>(d_.store->wal_frames()));  // see store.wal_max_mb
    w.Key("search_lag");  // durable log positions not yet searchable; null when search is off
    if (d_.search) {
      w.Int(static_cast<int64_t>(d_.search->lag()));
    } else {
      w.Null();
    }
    w.Key("vector").BeginObject();
    if (vec.ok()) {
      for (const auto& [o, seq] : *vec) w.Key(o).Int(static_cast<int64_t>(seq));
    }
    w.EndObject();
    w.Key("recovery");  // null, or why it originates nothing yet (restored or rolled back)
    WriteRecovery(w, d_.core->RecoveryStatus());
    w.EndObject();
    api::Ok(res, 200, w.View());
  });

  // Users: ?all=1 lists the whole replicated directory (default: users homed here),
  // ?after=<handle> continues a page, ?limit=1..1000 (default 100).
  s.Get("/admin/v1/users", [this, authorized](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    std::string all = req.get_param_value("all");
    std::string after = req.get_param_value("after");
    std::string limit_text = req.get_param_value("limit");
    int limit = 100;
    if (!limit_text.empty()) {
      auto n = json::ParseId(limit_text);
      if (!n || *n < 1 || *n > 1000) return api::Fail(res, BadRequest("parameter 'limit' must be 1 to 1000"));
      limit = static_cast<int>(*n);
    }
    if (after.size() > 200) return api::Fail(res, BadRequest("parameter 'after' is too long"));
    bool everyone = all == "1" || all == "true";
    auto lease = d_.store->readers().Acquire();
    if (!lease.ok()) return api::Fail(res, lease.status());
    auto users = (*lease)->q().ListUsers(everyone ? "" : d_.cfg->relay_name, after, limit + 1);
    if (!users.ok()) return api::Fail(res, users.status());
    bool more = static_cast<int>(users->size()) > limit;
    if (more) users->pop_back();
    json::JsonWriter w;
    w.BeginObject().Key("users").BeginArray();
    for (const auto& u : *users) WriteAdminUser(w, u, "", -1);
    w.EndArray();
    w.Key("has_more").Bool(more);
    w.Key("next_after").StrOrNull(more && !users->empty() ? users->back().handle() : "");
    w.EndObject();
    api::Ok(res, 200, w.View());
  });
  s.Get(R"(/admin/v1/users/([^/]+))", [this, authorized](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    auto handle = HandleOf(req.matches[1].str(), d_.cfg->relay_name);
    if (!handle.ok()) return api::Fail(res, handle.status());
    auto lease = d_.store->readers().Acquire();
    if (!lease.ok()) return api::Fail(res, lease.status());
    auto u = (*lease)->q().UserByHandle(*handle);
    if (!u.ok()) return api::Fail(res, u.status());
    if (!u.value()) return api::Fail(res, NotFound("no user " + *handle));
    std::string email;
    int64_t devices = -1;
    if (u.value()->relay == d_.cfg->relay_name) {  // credentials and devices live at home
      auto cred = (*lease)->q().CredentialsOf(u.value()->user_id);
      if (cred.ok() && cred.value()) email = cred.value()->email;
      auto n = (*lease)->q().ActiveDevices(u.value()->user_id, SystemClock::Get().NowMs());
      if (n.ok()) devices = *n;
    }
    json::JsonWriter w;
    WriteAdminUser(w, **u, email, devices);
    api::Ok(res, 200, w.View());
  });
  auto set_disabled = [this, authorized](bool disable) {
    return [this, authorized, disable](const httplib::Request& req, httplib::Response& res) {
      if (!authorized(req, res)) return;
      auto handle = HandleOf(req.matches[1].str(), d_.cfg->relay_name);
      if (!handle.ok()) return api::Fail(res, handle.status());
      uint64_t user_id = 0;
      {
        auto lease = d_.store->readers().Acquire();
        if (!lease.ok()) return api::Fail(res, lease.status());
        auto u = (*lease)->q().UserByHandle(*handle);
        if (!u.ok()) return api::Fail(res, u.status());
        if (!u.value()) return api::Fail(res, NotFound("no user " + *handle));
        user_id = u.value()->user_id;
      }
      Core* core = d_.core;
      auto u = core->Call<store::UserRow>([core, user_id, disable] { return core->OpSetDisabled(user_id, disable); });
      if (!u.ok()) return api::Fail(res, u.status());
      json::JsonWriter w;
      WriteAdminUser(w, *u, "", -1);
      api::Ok(res, 200, w.View());
    };
  };
  s.Post(R"(/admin/v1/users/([^/]+)/disable)", set_disabled(true));
  s.Post(R"(/admin/v1/users/([^/]+)/enable)", set_disabled(false));

  // Reports users filed here: ?status=open|resolved|all (default open), ?after=<report_id>,
  // ?limit=1..1000 (default 100), oldest first.
  s.Get("/admin/v1/reports", [this, authorized](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    std::string status = req.has_param("status") ? req.get_param_value("status") : "open";
    if (status != "open" && status != "resolved" && status != "all") {
      return api::Fail(res, BadRequest("parameter 'status' must be open, resolved or all"));
    }
    uint64_t after = 0;
    if (req.has_param("after")) {
      auto a = json::ParseId(req.get_param_value("after"));
      if (!a) return api::Fail(res, BadRequest("parameter 'after' must be a report id"));
      after = *a;
    }
    int limit = 100;
    if (req.has_param("limit")) {
      auto n = json::ParseId(req.get_param_value("limit"));
      if (!n || *n < 1 || *n > 1000) return api::Fail(res, BadRequest("parameter 'limit' must be 1 to 1000"));
      limit = static_cast<int>(*n);
    }
    auto lease = d_.store->readers().Acquire();
    if (!lease.ok()) return api::Fail(res, lease.status());
    auto list = (*lease)->q().Reports(status == "all" ? "" : status, after, limit + 1);
    if (!list.ok()) return api::Fail(res, list.status());
    bool more = static_cast<int>(list->size()) > limit;
    if (more) list->pop_back();
    json::JsonWriter w;
    w.BeginObject().Key("reports").BeginArray();
    for (const auto& r : *list) WriteReport(w, r);
    w.EndArray();
    w.Key("has_more").Bool(more);
    w.Key("next_after").IdOrNull(more && !list->empty() ? list->back().report_id : 0);
    w.EndObject();
    api::Ok(res, 200, w.View());
  });
  s.Post(R"(/admin/v1/reports/([^/]+)/resolve)",
         [this, authorized](const httplib::Request& req, httplib::Response& res) {
           if (!authorized(req, res)) return;
           auto id = api::PathId(req, 1, "report_id");
           if (!id.ok()) return api::Fail(res, id.status());
           std::string resolution;
           if (!req.body.empty()) {
             json::Doc doc;
             if (Status st = api::ParseBody(req, &doc); !st.ok()) return api::Fail(res, st);
             auto text = json::GetOptString(doc, "resolution", 2000);
             if (!text.ok()) return api::Fail(res, text.status());
             if (text.value()) resolution = std::string(**text);
           }
           Core* core = d_.core;
           uint64_t report_id = *id;
           auto r = core->Call<store::ReportRow>([=] { return core->OpResolveReport(report_id, resolution); });
           if (!r.ok()) return api::Fail(res, r.status());
           json::JsonWriter w;
           WriteReport(w, *r);
           api::Ok(res, 200, w.View());
         });
}

}  // namespace chatd
