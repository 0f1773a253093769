// Core operations on users and devices (core thread only).
#include "base/json.h"
#include "crypto/bytes.h"
#include "relay/core.h"

namespace chatd {

namespace {

uint64_t NewDeviceId() { return (crypto::RandomU64() & 0x7fffffffffffffffULL) | 1; }

}  // namespace

Result<TokenGrant> Core::OpNewDevice(uint64_t user_id) {
  TokenGrant g;
  g.user_id = user_id;
  g.device_id = NewDeviceId();
  g.refresh_token = crypto::NewOpaqueToken();
  int64_t now = clock_->NowMs();
  Status s = store_.writer().PutRefreshToken(crypto::HashOpaqueToken(g.refresh_token), user_id, g.device_id,
                                             now, now + int64_t{cfg_.refresh_token_ttl_s} * 1000);
  if (!s.ok()) {
    batch_failed_ = true;
    return s;
  }
  return g;
}

Result<TokenGrant> Core::OpRegister(const std::string& username, const std::string& email,
                                    const std::string& password_hash, const std::string& first_name,
                                    const std::string& last_name) {
  auto& w = store_.writer();
  auto existing = w.UserByHandle(username + "@" + cfg_.relay_name);
  if (!existing.ok()) return existing.status();
  if (existing.value()) return Conflict("the username is taken");
  auto taken = w.EmailTaken(email);
  if (!taken.ok()) return taken.status();
  if (taken.value()) return Conflict("the email address is already registered");

  crypto::Envelope env;
  env.id = NewId();
  env.kind = crypto::Kind::kUserCreate;
  env.chat_id = 0;
  env.author = env.id;  // the new user's id is the id of its creating envelope
  json::JsonWriter body;
  body.BeginObject().Key("username").Str(username).Key("first_name").Str(first_name)
      .Key("last_name").Str(last_name).EndObject();
  env.body = body.Take();
  auto pos = Emit(env);
  if (!pos.ok()) return pos.status();
  Status s = w.PutCredentials(env.id, email, password_hash);
  if (!s.ok()) {
    batch_failed_ = true;
    return s;
  }
  return OpNewDevice(env.id);
}

Result<TokenGrant> Core::OpRotateRefresh(const std::string& token_hash) {
  auto& w = store_.writer();
  auto row = w.RefreshToken(token_hash);
  if (!row.ok()) return row.status();
  if (!row.value()) return Unauthorized("unknown refresh token");
  const store::RefreshRow& r = *row.value();
  int64_t now = clock_->NowMs();
  if (r.revoked) {
    // A rotated token used again: someone holds a copy. End that device's session family.
    auto st = w.db().Prepare("UPDATE refresh_tokens SET revoked_at=? WHERE user_id=? AND device_id=? AND revoked_at=0");
    if (st.ok()) (void)st->Bind(1, now).Bind(2, r.user_id).Bind(3, r.device_id).Run();
    return Unauthorized("refresh token already used; the device has been logged out");
  }
  if (r.expires_at <= now) return Unauthorized("refresh token expired");
  auto user = w.UserById(r.user_id);
  if (!user.ok()) return user.status();
  if (!user.value() || user.value()->disabled) return Unauthorized("account disabled");
  auto revoked = w.RevokeRefreshToken(token_hash, now);
  if (!revoked.ok()) {
    batch_failed_ = true;
    return revoked.status();
  }
  TokenGrant g;
  g.user_id = r.user_id;
  g.device_id = r.device_id;
  g.refresh_token = crypto::NewOpaqueToken();
  Status s = w.PutRefreshToken(crypto::HashOpaqueToken(g.refresh_token), r.user_id, r.device_id, now,
                               now + int64_t{cfg_.refresh_token_ttl_s} * 1000);
  if (!s.ok()) {
    batch_failed_ = true;
    return s;
  }
  return g;
}

Status Core::OpLogout(const Actor& actor) {
  auto st = store_.writer().db().Prepare(
      "UPDATE refresh_tokens SET revoked_at=? WHERE user_id=? AND device_id=? AND revoked_at=0");
  if (!st.ok()) return st.status();
  Status s = st->Bind(1, clock_->NowMs()).Bind(2, actor.user_id).Bind(3, actor.device_id).Run();
  if (!s.ok()) {
    batch_failed_ = true;
    return s;
  }
  // The device's open WebSocket sessions end too (close 1008 "logged out").
  Delivery d;
  d.type = Delivery::Type::kCloseUserDevice;
  d.user_id = actor.user_id;
  d.device_id = actor.device_id;
  QueueDelivery(std::move(d));
  return s;
}

Result<store::UserRow> Core::OpUpdateProfile(const Actor& actor,
                                             const std::vector<std::pair<std::string, std::string>>& fields) {
  json::JsonWriter body;
  body.BeginObject();
  for (const auto& [k, v] : fields) body.Key(k).Str(v);
  body.EndObject();
  crypto::Envelope env;
  env.kind = crypto::Kind::kUserProfile;
  env.author = actor.user_id;
  env.device = std::to_string(actor.device_id);
  env.body = body.Take();
  auto pos = Emit(env);
  if (!pos.ok()) return pos.status();
  users_.erase(actor.user_id);
  auto user = store_.writer().UserById(actor.user_id);
  if (!user.ok()) return user.status();
  if (!user.value()) return NotFound("no such user");
  return std::move(*user.value());
}

}  // namespace chatd
