#include "crypto/password.h"

#include <sodium.h>

#include <array>
#include <cstring>

#include "crypto/bytes.h"

namespace chatd::crypto {
namespace {

constexpr std::string_view kArgon2idPrefix = "$argon2id$";

// Copies a stored hash into a NUL-terminated buffer of crypto_pwhash_STRBYTES, as the
// libsodium API requires. False if it cannot be a valid hash (too long, embedded NUL,
// not argon2id).
bool ToCString(std::string_view stored, std::array<char, crypto_pwhash_STRBYTES>* out) {
  if (stored.size() >= out->size()) return false;
  if (stored.find('\0') != std::string_view::npos) return false;
  if (stored.substr(0, kArgon2idPrefix.size()) != kArgon2idPrefix) return false;
  out->fill('\0');
  std::memcpy(out->data(), stored.data(), stored.size());
  return true;
}

bool ParamsInRange(const PasswordParams& p) {
  return p.ops >= crypto_pwhash_argon2id_OPSLIMIT_MIN &&
         p.ops <= crypto_pwhash_argon2id_OPSLIMIT_MAX &&
         p.mem_bytes >= crypto_pwhash_argon2id_MEMLIMIT_MIN &&
         p.mem_bytes <= crypto_pwhash_argon2id_MEMLIMIT_MAX;
}

}  // namespace

Result<std::string> HashPassword(std::string_view password, PasswordParams params) {
  if (password.size() < kMinPasswordLen || password.size() > kMaxPasswordLen) {
    return BadRequest("password must be 8 to 1024 bytes long");
  }
  if (!ParamsInRange(params)) return Internal("argon2id parameters out of range");
  Init();
  std::array<char, crypto_pwhash_STRBYTES> out{};
  if (crypto_pwhash_str_alg(out.data(), password.data(), password.size(), params.ops,
                            params.mem_bytes, crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return Internal("argon2id hashing failed (out of memory?)");
  }
  return std::string(out.data());
}

bool VerifyPassword(std::string_view stored_hash, std::string_view password) {
  if (password.size() > kMaxPasswordLen) return false;
  std::array<char, crypto_pwhash_STRBYTES> stored{};
  if (!ToCString(stored_hash, &stored)) return false;
  Init();
  return crypto_pwhash_str_verify(stored.data(), password.data(), password.size()) == 0;
}

bool PasswordNeedsRehash(std::string_view stored_hash, PasswordParams params) {
  if (!ParamsInRange(params)) return true;
  std::array<char, crypto_pwhash_STRBYTES> stored{};
  if (!ToCString(stored_hash, &stored)) return true;
  Init();
  // 0: matches params; 1: different params; -1: malformed.
  return crypto_pwhash_str_needs_rehash(stored.data(), params.ops, params.mem_bytes) != 0;
}

}  // namespace chatd::crypto
