// Core operations on users and devices (core thread only), and the effects of access
// envelopes (user_disable, session_revoke; docs/ENVELOPE.md) wherever they were created:
// the token checker's revocation list, the user's open sessions, and, on the user's home
// relay, the refresh tokens.
#include <algorithm>
#include <optional>

#include "base/json.h"
#include "base/log.h"
#include "crypto/bytes.h"
#include "relay/auth.h"
#include "relay/core.h"

namespace chatd {

namespace {

uint64_t NewDeviceId() { return (crypto::RandomU64() & 0x7fffffffffffffffULL) | 1; }

// What a user_disable or session_revoke envelope says.
struct AccessChange {
  crypto::Kind kind = crypto::Kind::kSessionRevoke;
  uint64_t user_id = 0;
  uint64_t device_id = 0;  // session_revoke of one device
  bool all = false;        // session_revoke of every device
  int64_t not_before = 0;  // with `all`, and for user_disable
  bool disabled = false;   // user_disable
};

std::optional<AccessChange> ParseAccessChange(const crypto::Envelope& env) {
  if (env.chat_id != 0) return std::nullopt;
  if (env.kind != crypto::Kind::kUserDisable && env.kind != crypto::Kind::kSessionRevoke) return std::nullopt;
  json::Doc body;
  if (!json::Parse(env.body, &body).ok()) return std::nullopt;
  AccessChange c;
  c.kind = env.kind;
  if (env.kind == crypto::Kind::kUserDisable) {
    auto user = json::GetId(body, "user_id");
    auto disabled = json::GetBool(body, "disabled");
    if (env.author != 0 || !user.ok() || !disabled.ok()) return std::nullopt;
    c.user_id = *user;
    c.disabled = *disabled;
    c.all = c.disabled;
    c.not_before = env.created_at;
    return c;
  }
  c.user_id = env.author;
  auto all = body.FindMember("all");
  if (all != body.MemberEnd() && all->value.IsTrue()) {
    auto nb = json::GetInt(body, "not_before", 0, INT64_MAX);
    if (!nb.ok()) return std::nullopt;
    c.all = true;
    c.not_before = *nb;
    return c;
  }
  auto device = json::GetId(body, "device_id");
  if (!device.ok() || *device == 0) return std::nullopt;
  c.device_id = *device;
  return c;
}

// A session_revoke by the acting user and device (body: docs/ENVELOPE.md).
crypto::Envelope SessionRevoke(const Actor& actor, std::string body) {
  return SystemEnvelope(crypto::Kind::kSessionRevoke, actor, std::move(body));
}

}  // namespace

bool Core::ValidAccessChange(const crypto::Envelope& env) {
  auto c = ParseAccessChange(env);
  if (!c || c->user_id == 0) return false;
  auto user = store_.writer().UserById(c->user_id);
  if (!user.ok() || !user.value()) return false;
  // Only the user's home relay decides whether the account is enabled.
  if (c->kind == crypto::Kind::kUserDisable) return user.value()->relay == env.origin;
  return true;
}

void Core::AnnounceUserUpdated(uint64_t user_id, uint64_t pos) {
  json::JsonWriter ev;
  ev.BeginObject().Key("type").Str("user_updated").Key("user_id").Id(user_id).Key("cursor").Id(pos).EndObject();
  Delivery d;
  d.type = Delivery::Type::kUsers;
  d.users = PresenceAudienceOf(user_id);  // chat partners and contacts, who show the profile
  d.frame = MakeTextFrame(ev.View());
  d.cursor = pos;
  QueueDelivery(std::move(d));
}

uint64_t Core::AccessChangeUser(const crypto::Envelope& env) {
  auto c = ParseAccessChange(env);
  return c ? c->user_id : 0;
}

void Core::ApplyAccessChange(const crypto::Envelope& env) {
  auto parsed = ParseAccessChange(env);
  if (!parsed) return;
  const AccessChange c = *parsed;
  const store::UserRow* user = UserOf(c.user_id);
  bool home = user && user->relay == cfg_.relay_name;
  users_.erase(c.user_id);  // the cached row's `disabled` may have changed
  if (c.kind == crypto::Kind::kUserDisable && !c.disabled) {
    if (revocations_) {
      AfterCommit([r = revocations_, id = c.user_id](bool ok) {
        if (ok) r->SetDisabled(id, false);
      });
    }
    return;
  }
  if (home) {
    // Refresh tokens live at home only: end the device, or every device that logged in
    // before the revocation (a login after it keeps its tokens).
    auto& w = store_.writer();
    int64_t now = clock_->NowMs();
    Status s;
    if (c.device_id) {
      auto st =
          w.db().Prepare("UPDATE refresh_tokens SET revoked_at=? WHERE user_id=? AND device_id=? AND revoked_at=0");
      s = st.ok() ? st->Bind(1, now).Bind(2, c.user_id).Bind(3, c.device_id).Run() : st.status();
    } else {
      auto st = w.db().Prepare(
          "UPDATE refresh_tokens SET revoked_at=?1 WHERE user_id=?2 AND revoked_at=0 AND device_id IN "
          "(SELECT device_id FROM refresh_tokens WHERE user_id=?2 AND created_at<?3)");
      s = st.ok() ? st->Bind(1, now).Bind(2, c.user_id).Bind(3, c.not_before).Run() : st.status();
    }
    if (!s.ok()) {
      batch_failed_ = true;
      log::Error("auth: cannot revoke refresh tokens", {{"error", s.message()}});
      return;
    }
  }
  // Open WebSocket sessions end (close 1008 "logged out"): that device's, or all of them.
  Delivery d;
  d.type = Delivery::Type::kCloseUserDevice;
  d.user_id = c.user_id;
  d.device_id = c.device_id;
  QueueDelivery(std::move(d));
  if (!revocations_) return;
  // After the commit and before the batch's replies and deliveries: a client that got
  // its 204 finds the token refused, and a session that authenticates meanwhile is
  // already in the gateway when the close arrives.
  AfterCommit([r = revocations_, c, at = env.created_at](bool ok) {
    if (!ok) return;
    if (c.kind == crypto::Kind::kUserDisable) r->SetDisabled(c.user_id, true);
    if (c.device_id)
      r->RevokeDevice(c.user_id, c.device_id, at);
    else
      r->RevokeBefore(c.user_id, c.not_before);
  });
}

Status Core::OpLogoutAll(const Actor& actor, int64_t token_issued_at_ms) {
  // Every token issued before now, and at least the caller's own (its home relay's clock
  // may run ahead of ours).
  int64_t not_before = std::max(clock_->NowMs(), token_issued_at_ms + 1);
  json::JsonWriter body;
  body.BeginObject().Key("all").Bool(true).Key("not_before").Int(not_before).EndObject();
  crypto::Envelope env = SessionRevoke(actor, body.Take());
  auto keys_before = LiveKeyDevices(actor.user_id);
  auto pos = Emit(env);
  if (!pos.ok()) return pos.status();
  ApplyAccessChange(env);
  AnnounceKeysRemoved(actor.user_id, keys_before, *pos);
  return Status::Ok();
}

Result<TokenGrant> Core::OpNewDevice(uint64_t user_id) {
  TokenGrant g;
  g.user_id = user_id;
  g.device_id = NewDeviceId();
  g.refresh_token = crypto::NewOpaqueToken();
  int64_t now = clock_->NowMs();
  Status s = store_.writer().PutRefreshToken(crypto::HashOpaqueToken(g.refresh_token), user_id, g.device_id, now,
                                             now + int64_t{cfg_.refresh_token_ttl_s} * 1000);
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
  body.BeginObject()
      .Key("username")
      .Str(username)
      .Key("first_name")
      .Str(first_name)
      .Key("last_name")
      .Str(last_name)
      .EndObject();
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
  // A session_revoke for this device: its tokens are refused on every relay, its
  // sessions close everywhere, and its home relay revokes its refresh tokens.
  json::JsonWriter body;
  body.BeginObject().Key("device_id").Id(actor.device_id).EndObject();
  crypto::Envelope env = SessionRevoke(actor, body.Take());
  auto keys_before = LiveKeyDevices(actor.user_id);
  auto pos = Emit(env);
  if (!pos.ok()) return pos.status();
  ApplyAccessChange(env);
  AnnounceKeysRemoved(actor.user_id, keys_before, *pos);
  return Status::Ok();
}

Result<store::UserRow> Core::OpUpdateProfile(const Actor& actor,
                                             const std::vector<std::pair<std::string, std::string>>& fields,
                                             const std::string& privacy) {
  crypto::Envelope env;  // the last one emitted, published to the user's sessions
  uint64_t pos = 0;
  auto emit = [&](crypto::Kind kind, std::string body) -> Status {
    env = crypto::Envelope();
    env.kind = kind;
    env.author = actor.user_id;
    env.device = std::to_string(actor.device_id);
    env.body = std::move(body);
    auto p = Emit(env);
    if (!p.ok()) return p.status();
    pos = *p;
    return Status::Ok();
  };
  if (!fields.empty()) {
    json::JsonWriter body;
    body.BeginObject();
    for (const auto& [k, v] : fields) body.Key(k).Str(v);
    body.EndObject();
    if (Status s = emit(crypto::Kind::kUserProfile, body.Take()); !s.ok()) return s;
  }
  if (!privacy.empty()) {
    if (Status s = emit(crypto::Kind::kPrivacy, privacy); !s.ok()) return s;
  }
  users_.erase(actor.user_id);
  Publish(env, pos, 0);  // profile_updated to every session of the user, on every device
  AnnounceUserUpdated(actor.user_id, pos);
  auto user = store_.writer().UserById(actor.user_id);
  if (!user.ok()) return user.status();
  if (!user.value()) return NotFound("no such user");
  return std::move(*user.value());
}

}  // namespace chatd
