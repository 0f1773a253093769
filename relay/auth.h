// relay/auth.h — access tokens and login rate limits.
//
// TokenService issues and verifies access tokens: PASETO v4.public signed by the relay key,
// payload {"iss","sub","dev","iat","exp"} (times RFC 3339), footer {"kid":"<relay>"}. The
// footer's kid picks the verification key; a token from a relay whose key is not known
// here is refused. Verify() is thread-safe (the key ring is immutable after construction
// except through AddRelayKey, which takes a lock).
//
// Revocations is the in-memory copy of the store's revocations view plus the disabled
// users: every Verify consults it (a shared lock and two hash lookups, no I/O). It is
// loaded from the store at start (LoadRevocations) and updated by the core thread after
// each commit that applies a user_disable or session_revoke envelope, local or from a
// peer, so a revocation takes effect on every relay. Thread-safe.
//
// RateLimiter counts attempts per key (an account, a source address) in fixed one-minute
// windows. Thread-safe; bounded memory (expired windows are pruned as it grows).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "base/status.h"
#include "base/time.h"
#include "crypto/keys.h"

namespace chatd {

namespace store {
class Queries;
}

struct Claims {
  uint64_t user_id = 0;
  uint64_t device_id = 0;
  std::string relay;  // the issuing (home) relay
  int64_t issued_at_ms = 0;
  int64_t expires_at_ms = 0;
};

// The longest access-token lifetime any relay issues (auth.access_token_ttl's maximum);
// longer-lived tokens are refused. Device revocations older than this plus a margin can
// no longer refuse an unexpired token, so they are not kept in memory.
inline constexpr int64_t kMaxTokenLifetimeMs = 86400 * 1000LL;
inline constexpr int64_t kDeviceRevocationKeepMs = kMaxTokenLifetimeMs + 3600 * 1000LL;

class Revocations {
 public:
  void SetDisabled(uint64_t user_id, bool disabled);
  // Refuses the user's tokens issued before not_before_ms (keeps the later time).
  void RevokeBefore(uint64_t user_id, int64_t not_before_ms);
  // Refuses every token of one device; at_ms is when it was revoked (for pruning; at most
  // once an hour, entries older than kDeviceRevocationKeepMs are dropped here).
  void RevokeDevice(uint64_t user_id, uint64_t device_id, int64_t at_ms);
  // Ok, or Unauthorized saying why ("account disabled", "token revoked").
  Status Check(uint64_t user_id, uint64_t device_id, int64_t issued_at_ms) const;
  bool IsDisabled(uint64_t user_id) const;
  // Drops device revocations older than now_ms - kDeviceRevocationKeepMs.
  void PruneDevices(int64_t now_ms);
  size_t device_count() const;

 private:
  void PruneLocked(int64_t now_ms);  // mu_ held
  struct UserState {
    bool disabled = false;
    int64_t not_before = 0;
  };
  struct PairHash {
    size_t operator()(const std::pair<uint64_t, uint64_t>& p) const {
      return std::hash<uint64_t>()(p.first * 0x9e3779b97f4a7c15ULL ^ p.second);
    }
  };
  mutable std::shared_mutex mu_;
  std::unordered_map<uint64_t, UserState> users_;                                 // guarded by mu_
  std::unordered_map<std::pair<uint64_t, uint64_t>, int64_t, PairHash> devices_;  // guarded by mu_
  int64_t last_prune_ms_ = 0;                                                     // guarded by mu_
};

class TokenService {
 public:
  TokenService(std::string relay, const crypto::KeyPair& key, int ttl_s, const Clock* clock = &SystemClock::Get());
  std::string Issue(uint64_t user_id, uint64_t device_id) const;
  Result<Claims> Verify(std::string_view token) const;
  // The key ring: this relay's key plus every pinned peer's (federation verifies peers'
  // envelopes and tokens with it). Thread-safe.
  void AddRelayKey(const std::string& relay, const crypto::PublicKey& key);
  void RemoveRelayKey(const std::string& relay);
  std::optional<crypto::PublicKey> KeyOf(const std::string& relay) const;
  // Looks up a user's home relay (from the replicated directory). Set once before use:
  // a token issued by another relay is accepted only for that relay's own users.
  void SetHomeLookup(std::function<std::optional<std::string>(uint64_t user_id)> fn) { home_of_ = std::move(fn); }
  int ttl_s() const { return ttl_s_; }
  // Consulted by Verify after the signature, expiry and home checks.
  Revocations& revocations() { return revocations_; }
  const Revocations& revocations() const { return revocations_; }
  size_t verified_cache_size() const;

  // Most tokens remembered as verified (then the memory is emptied and refilled).
  static constexpr size_t kVerifiedCacheMax = 16384;

 private:
  // Signature, claims, lifetime and home relay: what does not change for a given token
  // while the key ring stays the same.
  Result<Claims> VerifySigned(std::string_view token) const;
  std::string CacheKey(std::string_view token) const;
  void ForgetVerified();

  std::string relay_;
  const crypto::KeyPair& key_;
  int ttl_s_;
  const Clock* clock_;
  mutable std::shared_mutex mu_;
  std::map<std::string, crypto::PublicKey> keys_;  // guarded by mu_
  // Tokens that passed VerifySigned, by keyed BLAKE2b-256 digest of the token (the key is
  // random per process, so nobody can choose or predict a digest, and timing of the
  // lookup says nothing about any token). A hit skips the Ed25519 verify (~50 µs per REST
  // request), never the expiry and revocation checks. Emptied when the key ring changes.
  std::array<uint8_t, 32> cache_key_{};
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, Claims> verified_;  // guarded by cache_mu_
  std::function<std::optional<std::string>(uint64_t)> home_of_;
  Revocations revocations_;
};

// Fills `out` from the store: disabled users, every user-wide revocation, and device
// revocations younger than kDeviceRevocationKeepMs.
Status LoadRevocations(store::Queries& q, int64_t now_ms, Revocations* out);

class RateLimiter {
 public:
  explicit RateLimiter(const Clock* clock = &SystemClock::Get()) : clock_(clock) {}
  // Counts one attempt. False when `key` is over `per_minute`; then *retry_after_s says
  // when the window ends.
  bool Allow(const std::string& key, int per_minute, int* retry_after_s);
  void Reset(const std::string& key);

 private:
  struct Window {
    int64_t start_ms = 0;
    int count = 0;
  };
  const Clock* clock_;
  std::mutex mu_;
  std::unordered_map<std::string, Window> windows_;  // guarded by mu_
};

}  // namespace chatd
