// REST: accounts (register, login, refresh, logout, logout everywhere) and user profiles.
#include <algorithm>
#include <cctype>

#include "crypto/bytes.h"
#include "crypto/password.h"
#include "relay/api_util.h"
#include "relay/events.h"
#include "store/views.h"

namespace chatd::api {

namespace {

constexpr size_t kMaxName = 100;

Status ValidUsername(std::string_view u) {
  if (u.size() < 3 || u.size() > 32) return BadRequest("field 'username' must be 3 to 32 characters");
  for (char c : u) {
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_' ||
          c == '.')) {
      return BadRequest("field 'username' may hold only a-z, 0-9, '_' and '.'");
    }
  }
  if (!std::isalnum(static_cast<unsigned char>(u[0]))) return BadRequest("field 'username' must start with a letter or digit");
  return Status::Ok();
}

Status ValidEmail(std::string_view e) {
  size_t at = e.find('@');
  if (e.size() < 3 || e.size() > 254 || at == std::string_view::npos || at == 0 || at + 1 >= e.size() ||
      e.find('@', at + 1) != std::string_view::npos ||
      std::any_of(e.begin(), e.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)) || c < 0x20; })) {
    return BadRequest("field 'email' must be an email address");
  }
  return Status::Ok();
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The body of register and login answers.
std::string SessionJson(const Ctx& ctx, const store::UserRow& u, const std::string& email, const TokenGrant& g) {
  json::JsonWriter w;
  w.BeginObject();
  w.Key("user_id").Id(u.user_id);
  w.Key("username").Str(u.username);
  w.Key("handle").Str(u.handle());
  if (!email.empty()) w.Key("email").Str(email);
  w.Key("device_id").Id(g.device_id);
  w.Key("access_token").Str(ctx.d.tokens->Issue(g.user_id, g.device_id));
  w.Key("refresh_token").Str(g.refresh_token);
  w.Key("token_type").Str("Bearer");
  w.Key("expires_in").Int(ctx.d.tokens->ttl_s());
  w.EndObject();
  return w.Take();
}

crypto::PasswordParams Params(const conf::Config& cfg) {
  return {static_cast<uint64_t>(cfg.argon2_ops), static_cast<size_t>(cfg.argon2_mem_kib) * 1024};
}

// GET and PATCH /users/me: the whole profile, with the privacy settings.
std::string OwnProfile(const store::UserRow& u) {
  json::JsonWriter w;
  events::WriteOwnProfile(w, u);
  return w.Take();
}

}  // namespace

void RegisterAuthRoutes(httplib::Server& s, Ctx& ctx) {
  Ctx* c = &ctx;
  s.Post("/api/v1/auth/register", [c](const httplib::Request& req, httplib::Response& res) {
    const conf::Config& cfg = *c->d.cfg;
    int retry = 0;
    if (!c->limiter->Allow("register:" + ClientIp(req), cfg.register_per_ip_per_min, &retry)) {
      return Fail(res, Limited(retry, "registrations from this address"));
    }
    json::Doc doc;
    if (Status st = ParseBody(req, &doc); !st.ok()) return Fail(res, st);
    auto username = json::GetString(doc, "username", 64);
    auto email = json::GetString(doc, "email", 254);
    auto password = json::GetString(doc, "password", 1024);
    auto first = json::GetOptString(doc, "first_name", kMaxName);
    auto last = json::GetOptString(doc, "last_name", kMaxName);
    for (const Status* e : {&username.status(), &email.status(), &password.status(), &first.status(), &last.status()}) {
      if (!e->ok()) return Fail(res, *e);
    }
    std::string name = Lower(*username);
    if (Status st = ValidUsername(name); !st.ok()) return Fail(res, st);
    if (Status st = ValidEmail(*email); !st.ok()) return Fail(res, st);
    if (password->size() < 8) return Fail(res, BadRequest("field 'password' must be at least 8 characters"));
    auto hash = crypto::HashPassword(*password, Params(cfg));
    if (!hash.ok()) return Fail(res, hash.status());
    std::string mail(*email), fn(first.value().value_or("")), ln(last.value().value_or("")), ph(*hash);
    auto grant = c->d.core->Call<TokenGrant>([=]() { return c->d.core->OpRegister(name, mail, ph, fn, ln); });
    if (!grant.ok()) return Fail(res, grant.status());
    store::UserRow u;
    u.user_id = grant->user_id;
    u.username = name;
    u.relay = cfg.relay_name;
    Ok(res, 201, SessionJson(*c, u, mail, *grant));
  });

  s.Post("/api/v1/auth/login", [c](const httplib::Request& req, httplib::Response& res) {
    const conf::Config& cfg = *c->d.cfg;
    json::Doc doc;
    if (Status st = ParseBody(req, &doc); !st.ok()) return Fail(res, st);
    auto username = json::GetString(doc, "username", 300);
    if (!username.ok()) return Fail(res, username.status());
    auto password = json::GetOptString(doc, "password", 1024);
    if (!password.ok()) return Fail(res, password.status());
    std::optional<std::string_view> pw = *password;
    if (!pw) {
      auto alias = json::GetString(doc, "pass", 1024);
      if (!alias.ok()) return Fail(res, BadRequest("field 'password' is required"));
      pw = *alias;
    }
    std::string handle = Lower(*username);
    if (handle.find('@') == std::string::npos) handle += "@" + cfg.relay_name;
    int retry = 0;
    if (!c->limiter->Allow("login-ip:" + ClientIp(req), cfg.login_per_ip_per_min, &retry)) {
      return Fail(res, Limited(retry, "login attempts from this address"));
    }
    if (!c->limiter->Allow("login-acct:" + handle, cfg.login_per_account_per_min, &retry)) {
      return Fail(res, Limited(retry, "login attempts for this account"));
    }
    std::optional<store::UserRow> user;
    std::optional<store::Credentials> cred;
    {
      auto lease = c->d.store->readers().Acquire();
      if (!lease.ok()) return Fail(res, lease.status());
      auto u = (*lease)->q().UserByHandle(handle);
      if (!u.ok()) return Fail(res, u.status());
      if (u.value() && u.value()->relay == cfg.relay_name) {
        auto cr = (*lease)->q().CredentialsOf(u.value()->user_id);
        if (!cr.ok()) return Fail(res, cr.status());
        user = std::move(u.value());
        cred = std::move(cr.value());
      }
    }
    // Verify against a dummy hash when there is no such account, so timing reveals nothing.
    bool good = crypto::VerifyPassword(cred ? cred->password_hash : *c->dummy_hash, *pw) && cred.has_value();
    if (!good) return Fail(res, Unauthorized("wrong username or password"));
    c->limiter->Reset("login-acct:" + handle);  // only failed attempts count against the account
    // Said only to someone who knows the password.
    if (user->disabled) return Fail(res, Forbidden("this account is disabled", "account_disabled"));
    uint64_t uid = user->user_id;
    auto grant = c->d.core->Call<TokenGrant>([=]() { return c->d.core->OpNewDevice(uid); });
    if (!grant.ok()) return Fail(res, grant.status());
    Ok(res, 200, SessionJson(*c, *user, cred->email, *grant));
  });

  s.Post("/api/v1/auth/refresh", [c](const httplib::Request& req, httplib::Response& res) {
    json::Doc doc;
    if (Status st = ParseBody(req, &doc); !st.ok()) return Fail(res, st);
    auto token = json::GetString(doc, "refresh_token", 0);
    if (!token.ok()) return Fail(res, token.status());
    if (token->size() > 256) return Fail(res, Unauthorized("unknown refresh token"));
    std::string hash = crypto::HashOpaqueToken(*token);
    auto grant = c->d.core->Call<TokenGrant>([=]() { return c->d.core->OpRotateRefresh(hash); });
    if (!grant.ok()) return Fail(res, grant.status());
    json::JsonWriter w;
    w.BeginObject();
    w.Key("access_token").Str(c->d.tokens->Issue(grant->user_id, grant->device_id));
    w.Key("refresh_token").Str(grant->refresh_token);
    w.Key("token_type").Str("Bearer");
    w.Key("expires_in").Int(c->d.tokens->ttl_s());
    w.EndObject();
    Ok(res, 200, w.View());
  });

  s.Post("/api/v1/auth/logout", [c](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    Actor actor{claims->user_id, claims->device_id};
    Status r = c->d.core->CallStatus([=] { return c->d.core->OpLogout(actor); });
    if (!r.ok()) return Fail(res, r);
    NoContent(res);
  });

  s.Post("/api/v1/auth/logout_all", [c](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    Actor actor{claims->user_id, claims->device_id};
    int64_t iat = claims->issued_at_ms;
    Status r = c->d.core->CallStatus([=] { return c->d.core->OpLogoutAll(actor, iat); });
    if (!r.ok()) return Fail(res, r);
    NoContent(res);
  });

  s.Get("/api/v1/users/me", [c](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    auto lease = c->d.store->readers().Acquire();
    if (!lease.ok()) return Fail(res, lease.status());
    auto u = (*lease)->q().UserById(claims->user_id);
    if (!u.ok()) return Fail(res, u.status());
    if (!u.value()) return Fail(res, NotFound("no such user"));
    Ok(res, 200, OwnProfile(**u));
  });

  s.Patch("/api/v1/users/me", [c](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    json::Doc doc;
    if (Status st = ParseBody(req, &doc); !st.ok()) return Fail(res, st);
    std::vector<std::pair<std::string, std::string>> fields;
    static const std::pair<const char*, size_t> kFields[] = {
        {"first_name", kMaxName}, {"last_name", kMaxName}, {"status_message", 256}, {"profile_picture_url", 2048}};
    for (const auto& [name, max] : kFields) {
      auto v = json::GetOptString(doc, name, max);
      if (!v.ok()) return Fail(res, v.status());
      if (v.value()) fields.emplace_back(name, std::string(**v));
    }
    std::string privacy;  // the body of a privacy envelope, "" if none
    if (auto it = doc.FindMember("privacy"); it != doc.MemberEnd() && !it->value.IsNull()) {
      if (!store::ValidPrivacyBody(it->value)) {
        return Fail(res, BadRequest("field 'privacy' must be an object of last_seen, profile_photo, about, groups "
                                    "(each \"everyone\", \"contacts\" or \"nobody\") and read_receipts (true or "
                                    "false), at least one of them"));
      }
      rapidjson::StringBuffer b;
      rapidjson::Writer<rapidjson::StringBuffer> wr(b);
      it->value.Accept(wr);
      privacy.assign(b.GetString(), b.GetSize());
    }
    if (fields.empty() && privacy.empty()) return Fail(res, BadRequest("nothing to change"));
    Actor actor{claims->user_id, claims->device_id};
    auto u = c->d.core->Call<store::UserRow>([=]() { return c->d.core->OpUpdateProfile(actor, fields, privacy); });
    if (!u.ok()) return Fail(res, u.status());
    Ok(res, 200, OwnProfile(*u));
  });

  s.Get(R"(/api/v1/users/([^/]+))", [c](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    auto id = PathId(req, 1, "user_id");
    if (!id.ok()) return Fail(res, id.status());
    auto lease = c->d.store->readers().Acquire();
    if (!lease.ok()) return Fail(res, lease.status());
    auto u = (*lease)->q().UserById(*id);
    if (!u.ok()) return Fail(res, u.status());
    if (!u.value()) return Fail(res, NotFound("no such user"));
    json::JsonWriter w;
    events::WriteUserFor(w, **u, claims->user_id, (*lease)->q());
    Ok(res, 200, w.View());
  });

  s.Get("/api/v1/users", [c](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    std::string q = req.get_param_value("query");
    if (q.empty() || q.size() > 64) return Fail(res, BadRequest("parameter 'query' must be 1 to 64 characters"));
    auto lease = c->d.store->readers().Acquire();
    if (!lease.ok()) return Fail(res, lease.status());
    auto users = (*lease)->q().SearchUsers(Lower(q), 50);
    if (!users.ok()) return Fail(res, users.status());
    json::JsonWriter w;
    w.BeginObject().Key("users").BeginArray();
    for (const auto& u : *users) events::WriteUserFor(w, u, claims->user_id, (*lease)->q());
    w.EndArray().EndObject();
    Ok(res, 200, w.View());
  });
}

}  // namespace chatd::api
