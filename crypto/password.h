// crypto/password.h — password hashing with argon2id (libsodium crypto_pwhash_str_alg,
// ALG_ARGON2ID13).
//
// Contract:
//   * Stored hashes are self-describing PHC strings:
//       $argon2id$v=19$m=<KiB>,t=<ops>,p=1$<salt b64>$<hash b64>
//     With the default PasswordParams that is "$argon2id$v=19$m=19456,t=2,p=1$...".
//   * These calls are deliberately slow and memory-hungry (19 MiB and tens of ms each at
//     the default params): run them on a worker pool, never on the core or gateway loop.
//   * All functions are stateless and safe to call concurrently from any thread.
//     Passwords are borrowed, never copied into long-lived memory, never logged.
//   * Untrusted input (a stored hash read back from the store, a password from a client)
//     never crashes; VerifyPassword and PasswordNeedsRehash treat anything malformed as
//     "no match" / "needs rehash".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace chatd::crypto {

inline constexpr size_t kMinPasswordLen = 8;
inline constexpr size_t kMaxPasswordLen = 1024;

// argon2id cost. The defaults are the OWASP minimum (19 MiB, 2 passes, 1 lane).
// Tests may use smaller values (ops >= 1, mem_bytes >= 8 KiB).
struct PasswordParams {
  uint64_t ops = 2;
  size_t mem_bytes = 19ull * 1024 * 1024;
};

// Hashes a password of 8..1024 bytes (kBadRequest otherwise) with a fresh random salt.
// kInternal if the params are out of libsodium's range or memory runs out.
Result<std::string> HashPassword(std::string_view password, PasswordParams params);

// True iff stored_hash is an argon2id hash of password. False on any error (malformed
// hash, password longer than kMaxPasswordLen, out of memory).
bool VerifyPassword(std::string_view stored_hash, std::string_view password);

// True if stored_hash should be replaced by a fresh HashPassword(…, params) after the
// next successful login: it is not argon2id, its cost differs from params, or its
// parameters cannot be read. It inspects only the algorithm and the parameters; the
// hash value itself is checked by VerifyPassword, so call this after a successful
// VerifyPassword.
bool PasswordNeedsRehash(std::string_view stored_hash, PasswordParams params);

}  // namespace chatd::crypto
