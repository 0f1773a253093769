#include "relay/auth.h"

#include <sodium.h>

#include <algorithm>

#include "base/json.h"
#include "crypto/paseto.h"
#include "store/store.h"

namespace chatd {

TokenService::TokenService(std::string relay, const crypto::KeyPair& key, int ttl_s, const Clock* clock)
    : relay_(std::move(relay)), key_(key), ttl_s_(ttl_s), clock_(clock) {
  keys_[relay_] = key.public_key();
  randombytes_buf(cache_key_.data(), cache_key_.size());
}

void TokenService::AddRelayKey(const std::string& relay, const crypto::PublicKey& key) {
  {
    std::unique_lock<std::shared_mutex> lock(mu_);
    keys_[relay] = key;
  }
  ForgetVerified();  // a replaced key must not keep vouching for its tokens
}

void TokenService::RemoveRelayKey(const std::string& relay) {
  if (relay == relay_) return;  // never our own
  {
    std::unique_lock<std::shared_mutex> lock(mu_);
    keys_.erase(relay);
  }
  ForgetVerified();
}

void TokenService::ForgetVerified() {
  std::lock_guard<std::mutex> lock(cache_mu_);
  verified_.clear();
}

size_t TokenService::verified_cache_size() const {
  std::lock_guard<std::mutex> lock(cache_mu_);
  return verified_.size();
}

std::string TokenService::CacheKey(std::string_view token) const {
  std::string digest(crypto_generichash_BYTES, '\0');
  crypto_generichash(reinterpret_cast<unsigned char*>(digest.data()), digest.size(),
                     reinterpret_cast<const unsigned char*>(token.data()), token.size(), cache_key_.data(),
                     cache_key_.size());
  return digest;
}

std::optional<crypto::PublicKey> TokenService::KeyOf(const std::string& relay) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  auto it = keys_.find(relay);
  if (it == keys_.end()) return std::nullopt;
  return it->second;
}

std::string TokenService::Issue(uint64_t user_id, uint64_t device_id) const {
  int64_t now = clock_->NowMs();
  json::JsonWriter p;
  p.BeginObject();
  p.Key("iss").Str(relay_);
  p.Key("sub").Id(user_id);
  p.Key("dev").Id(device_id);
  p.Key("iat").Time(now);
  p.Key("exp").Time(now + int64_t{ttl_s_} * 1000);
  p.EndObject();
  json::JsonWriter f;
  f.BeginObject().Key("kid").Str(relay_).EndObject();
  return crypto::PasetoSign(key_, p.View(), f.View());
}

Result<Claims> TokenService::Verify(std::string_view token) const {
  if (token.size() > 4096) return Unauthorized("malformed token");
  const std::string cache_key = CacheKey(token);
  std::optional<Claims> known;
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = verified_.find(cache_key);
    if (it != verified_.end()) known = it->second;
  }
  if (!known) {
    auto c = VerifySigned(token);
    if (!c.ok()) return c.status();
    known = std::move(c.value());
    if (known->expires_at_ms > clock_->NowMs()) {
      std::lock_guard<std::mutex> lock(cache_mu_);
      if (verified_.size() >= kVerifiedCacheMax) verified_.clear();
      verified_.emplace(cache_key, *known);
    }
  }
  if (known->expires_at_ms <= clock_->NowMs()) return Unauthorized("token expired");
  if (Status s = revocations_.Check(known->user_id, known->device_id, known->issued_at_ms); !s.ok()) return s;
  return *std::move(known);
}

Result<Claims> TokenService::VerifySigned(std::string_view token) const {
  auto footer = crypto::PasetoFooter(token);
  if (!footer.ok()) return Unauthorized("malformed token");
  json::Doc fdoc;
  if (!json::Parse(*footer, &fdoc).ok()) return Unauthorized("malformed token");
  auto kid = json::GetString(fdoc, "kid", 64);
  if (!kid.ok()) return Unauthorized("malformed token");
  crypto::PublicKey pk;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    auto it = keys_.find(std::string(*kid));
    if (it == keys_.end()) return Unauthorized("token signed by an unknown relay");
    pk = it->second;
  }
  auto payload = crypto::PasetoVerify(pk, token);
  if (!payload.ok()) return Unauthorized("invalid token");
  json::Doc doc;
  if (!json::Parse(*payload, &doc).ok()) return Unauthorized("malformed token claims");
  auto iss = json::GetString(doc, "iss", 64);
  auto sub = json::GetId(doc, "sub");
  auto dev = json::GetId(doc, "dev");
  auto iat = json::GetString(doc, "iat", 64);
  auto exp = json::GetString(doc, "exp", 64);
  if (!iss.ok() || !sub.ok() || !dev.ok() || !iat.ok() || !exp.ok() || *iss != *kid) {
    return Unauthorized("malformed token claims");
  }
  Claims c;
  c.user_id = *sub;
  c.device_id = *dev;
  c.relay = std::string(*iss);
  if (!ParseRfc3339Ms(*iat, &c.issued_at_ms) || !ParseRfc3339Ms(*exp, &c.expires_at_ms)) {
    return Unauthorized("malformed token claims");
  }
  if (c.expires_at_ms <= clock_->NowMs()) return Unauthorized("token expired");
  if (c.expires_at_ms - c.issued_at_ms > kMaxTokenLifetimeMs) return Unauthorized("token lifetime too long");
  if (c.relay != relay_) {
    // Only the user's home relay may vouch for the user (a user's home never changes).
    auto home = home_of_ ? home_of_(c.user_id) : std::nullopt;
    if (!home || *home != c.relay) return Unauthorized("token not issued by the user's home relay");
  }
  return c;
}

void Revocations::SetDisabled(uint64_t user_id, bool disabled) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  users_[user_id].disabled = disabled;
}

void Revocations::RevokeBefore(uint64_t user_id, int64_t not_before_ms) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  UserState& u = users_[user_id];
  u.not_before = std::max(u.not_before, not_before_ms);
}

void Revocations::RevokeDevice(uint64_t user_id, uint64_t device_id, int64_t at_ms) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  int64_t& at = devices_[{user_id, device_id}];
  at = std::max(at, at_ms);
  if (at_ms - last_prune_ms_ > 3600 * 1000) PruneLocked(at_ms);
}

Status Revocations::Check(uint64_t user_id, uint64_t device_id, int64_t issued_at_ms) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  auto u = users_.find(user_id);
  if (u != users_.end()) {
    if (u->second.disabled) return Unauthorized("account disabled");
    if (issued_at_ms < u->second.not_before) return Unauthorized("token revoked");
  }
  if (!devices_.empty() && devices_.count({user_id, device_id})) return Unauthorized("token revoked (logged out)");
  return Status::Ok();
}

bool Revocations::IsDisabled(uint64_t user_id) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  auto u = users_.find(user_id);
  return u != users_.end() && u->second.disabled;
}

void Revocations::PruneDevices(int64_t now_ms) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  PruneLocked(now_ms);
}

void Revocations::PruneLocked(int64_t now_ms) {
  last_prune_ms_ = now_ms;
  for (auto it = devices_.begin(); it != devices_.end();) {
    it = it->second < now_ms - kDeviceRevocationKeepMs ? devices_.erase(it) : std::next(it);
  }
}

size_t Revocations::device_count() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return devices_.size();
}

Status LoadRevocations(store::Queries& q, int64_t now_ms, Revocations* out) {
  auto rows = q.Revocations(now_ms - kDeviceRevocationKeepMs);
  if (!rows.ok()) return rows.status();
  for (const auto& r : *rows) {
    if (r.device_id == 0)
      out->RevokeBefore(r.user_id, r.not_before);
    else
      out->RevokeDevice(r.user_id, r.device_id, r.at);
  }
  auto disabled = q.DisabledUsers();
  if (!disabled.ok()) return disabled.status();
  for (uint64_t id : *disabled) out->SetDisabled(id, true);
  return Status::Ok();
}

bool RateLimiter::Allow(const std::string& key, int per_minute, int* retry_after_s) {
  int64_t now = clock_->NowMs();
  std::lock_guard<std::mutex> lock(mu_);
  if (windows_.size() > 100000) {
    for (auto it = windows_.begin(); it != windows_.end();) {
      it = (now - it->second.start_ms >= 60000) ? windows_.erase(it) : std::next(it);
    }
  }
  Window& w = windows_[key];
  if (now - w.start_ms >= 60000) {
    w.start_ms = now;
    w.count = 0;
  }
  if (w.count >= per_minute) {
    *retry_after_s = static_cast<int>((w.start_ms + 60000 - now + 999) / 1000);
    if (*retry_after_s < 1) *retry_after_s = 1;
    return false;
  }
  ++w.count;
  return true;
}

void RateLimiter::Reset(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  windows_.erase(key);
}

}  // namespace chatd
