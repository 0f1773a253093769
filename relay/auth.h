// relay/auth.h — access tokens and login rate limits.
//
// TokenService issues and verifies access tokens: PASETO v4.public signed by the relay key,
// payload {"iss","sub","dev","iat","exp"} (times RFC 3339), footer {"kid":"<relay>"}. The
// footer's kid picks the verification key; a token from a relay whose key is not known
// here is refused. Verify() is thread-safe (the key ring is immutable after construction
// except through AddRelayKey, which takes a lock).
//
// RateLimiter counts attempts per key (an account, a source address) in fixed one-minute
// windows. Thread-safe; bounded memory (expired windows are pruned as it grows).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "base/status.h"
#include "base/time.h"
#include "crypto/keys.h"

namespace chatd {

struct Claims {
  uint64_t user_id = 0;
  uint64_t device_id = 0;
  std::string relay;  // the issuing (home) relay
  int64_t expires_at_ms = 0;
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

 private:
  std::string relay_;
  const crypto::KeyPair& key_;
  int ttl_s_;
  const Clock* clock_;
  mutable std::shared_mutex mu_;
  std::map<std::string, crypto::PublicKey> keys_;  // guarded by mu_
  std::function<std::optional<std::string>(uint64_t)> home_of_;
};

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
