// REST: device keys for end-to-end encryption (docs/API.md "End-to-end encryption"). Publishing,
// removing and claiming go through the core (relay/ops_keys.cpp); the directory is read
// from a read connection. Claims at the user's home relay consume a one-time prekey;
// anywhere else they answer the bundle without one.
#include "relay/api_util.h"

namespace chatd::api {

namespace {

void WriteSignedPrekey(json::JsonWriter& w, const store::DeviceKeysRow& d) {
  w.Key("signed_prekey").BeginObject().Key("key_id").Int(d.spk_id).Key("public_key").Str(d.spk);
  w.Key("signature").Str(d.spk_sig).EndObject();
}

// One device; one_time_prekeys_left is known at the user's home relay only (else null).
void WriteDevice(json::JsonWriter& w, const store::DeviceKeysRow& d, bool home) {
  w.BeginObject();
  w.Key("device_id").Id(d.device_id);
  w.Key("identity_key").Str(d.identity_key);
  WriteSignedPrekey(w, d);
  w.Key("one_time_prekeys_left");
  if (home)
    w.Int(d.prekeys_left);
  else
    w.Null();
  w.Key("updated_at").Time(d.updated_at);
  w.EndObject();
}

// A user path parameter: an id, or "me".
Result<uint64_t> PathUser(const httplib::Request& req, const Claims& claims) {
  if (req.matches.size() > 1 && req.matches[1] == "me") return claims.user_id;
  return PathId(req, 1, "user_id");
}

}  // namespace

void RegisterKeyRoutes(httplib::Server& s, Ctx& ctx) {
  Ctx* c = &ctx;
  Core* core = c->d.core;

  s.Put("/api/v1/devices/me/keys", [c, core](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    json::Doc doc;
    if (Status st = ParseBody(req, &doc); !st.ok()) return Fail(res, st);
    auto bundle = crypto::ParseDeviceBundle(doc);
    if (!bundle.ok()) return Fail(res, bundle.status());
    Actor actor{claims->user_id, claims->device_id};
    crypto::DeviceBundle b = std::move(*bundle);
    auto d = core->Call<store::DeviceKeysRow>([=]() { return core->OpPublishKeys(actor, b); });
    if (!d.ok()) return Fail(res, d.status());
    json::JsonWriter w;
    WriteDevice(w, *d, claims->relay == c->d.cfg->relay_name);
    Ok(res, 200, w.View());
  });

  s.Delete("/api/v1/devices/me/keys", [c, core](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    Actor actor{claims->user_id, claims->device_id};
    Status r = core->CallStatus([=] { return core->OpRemoveKeys(actor); });
    if (!r.ok()) return Fail(res, r);
    NoContent(res);
  });

  s.Get(R"(/api/v1/users/([^/]+)/devices)", [c](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    auto uid = PathUser(req, *claims);
    if (!uid.ok()) return Fail(res, uid.status());
    auto lease = c->d.store->readers().Acquire();
    if (!lease.ok()) return Fail(res, lease.status());
    store::Queries& q = (*lease)->q();
    auto user = q.UserById(*uid);
    if (!user.ok()) return Fail(res, user.status());
    if (!user.value()) return Fail(res, NotFound("no such user"));
    auto devices = q.DevicesOf(*uid);
    if (!devices.ok()) return Fail(res, devices.status());
    const bool home = user.value()->relay == c->d.cfg->relay_name;
    json::JsonWriter w;
    w.BeginObject().Key("user_id").Id(*uid).Key("handle").Str(user.value()->handle());
    w.Key("home_relay").Str(user.value()->relay).Key("one_time_prekeys_here").Bool(home);
    w.Key("devices").BeginArray();
    for (const auto& d : *devices) WriteDevice(w, d, home);
    w.EndArray().EndObject();
    Ok(res, 200, w.View());
  });

  s.Post(
      R"(/api/v1/users/([^/]+)/devices/([^/]+)/claim)", [c, core](const httplib::Request& req, httplib::Response& res) {
        auto claims = Authenticate(*c, req);
        if (!claims.ok()) return Fail(res, claims.status());
        auto uid = PathUser(req, *claims);
        if (!uid.ok()) return Fail(res, uid.status());
        auto did = PathId(req, 2, "device_id");
        if (!did.ok()) return Fail(res, did.status());
        std::string home_relay;
        Result<PrekeyClaim> claim = Internal("unset");
        {
          auto lease = c->d.store->readers().Acquire();
          if (!lease.ok()) return Fail(res, lease.status());
          auto user = (*lease)->q().UserById(*uid);
          if (!user.ok()) return Fail(res, user.status());
          if (!user.value()) return Fail(res, NotFound("no such user"));
          home_relay = user.value()->relay;
          if (home_relay != c->d.cfg->relay_name) {  // not held here: the bundle without one
            auto d = (*lease)->q().DeviceKeys(*uid, *did, true);
            if (!d.ok()) return Fail(res, d.status());
            if (!d.value()) return Fail(res, NotFound("this device has no published keys"));
            claim = PrekeyClaim{std::move(*d.value()), std::nullopt};
          }
        }
        const bool home = home_relay == c->d.cfg->relay_name;
        // One user may take a given user's one-time prekeys only so fast (a client needs one
        // per device when it opens sessions), so nobody drains them all in a moment.
        int retry = 0;
        if (home && !c->limiter->Allow("claim:" + std::to_string(claims->user_id) + ":" + std::to_string(*uid),
                                       c->d.cfg->prekey_claims_per_min, &retry)) {
          return Fail(res, Limited(retry, "one-time prekey claims for this user's devices"));
        }
        if (home) {
          uint64_t user_id = *uid, device_id = *did;
          claim = core->Call<PrekeyClaim>([=]() { return core->OpClaimPrekey(user_id, device_id); });
        }
        if (!claim.ok()) return Fail(res, claim.status());
        const store::DeviceKeysRow& d = claim->device;
        json::JsonWriter w;
        w.BeginObject().Key("user_id").Id(d.user_id).Key("device_id").Id(d.device_id);
        w.Key("identity_key").Str(d.identity_key);
        WriteSignedPrekey(w, d);
        w.Key("one_time_prekey");
        if (claim->one_time) {
          w.BeginObject().Key("key_id").Int(claim->one_time->key_id).Key("public_key").Str(claim->one_time->public_key);
          w.EndObject();
        } else {
          w.Null();
        }
        w.Key("one_time_prekey_status").Str(claim->one_time ? "claimed" : home ? "exhausted" : "not_home_relay");
        w.Key("home_relay").Str(home_relay);
        w.Key("updated_at").Time(d.updated_at);
        w.EndObject();
        Ok(res, 200, w.View());
      });
}

}  // namespace chatd::api
