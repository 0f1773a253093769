// crypto/bytes.h — byte strings, encodings, hashing, randomness and secrets.
//
// Contract:
//   * Every function here is safe to call from any thread without external
//     synchronization. libsodium is initialized lazily and exactly once by Init(),
//     which every function of the crypto module calls before touching libsodium
//     (calling it yourself is harmless and never required).
//   * Inputs are borrowed (spans and string_views are only read during the call);
//     outputs are returned by value and owned by the caller.
//   * Decoders (HexDecode, Base64UrlDecode) accept untrusted input: they never crash,
//     never assert, and return a kBadRequest Status on anything malformed.
//   * SecretBytes owns key material: it is move-only and wipes its buffer with
//     sodium_memzero when destroyed or moved from. A SecretBytes object itself is not
//     synchronized: share it read-only across threads or guard it.
//   * Randomness comes from libsodium's randombytes (the OS CSPRNG).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace chatd::crypto {

using Bytes = std::vector<uint8_t>;

// Initializes libsodium once (thread-safe). Aborts the process if libsodium cannot
// initialize (no usable randomness source): nothing in chatd can run safely without it.
void Init();

// Views over text as bytes and bytes as text (no copies).
inline std::span<const uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string_view AsText(std::span<const uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// Lower-case hex. HexDecode accepts upper or lower case digits, requires an even
// length and rejects any other character (no whitespace, no "0x").
std::string HexEncode(std::span<const uint8_t> data);
Result<Bytes> HexDecode(std::string_view text);

// RFC 4648 §5 base64url without padding. The decoder rejects '=', '+', '/',
// whitespace, impossible lengths (len % 4 == 1) and non-canonical trailing bits, so
// every byte string has exactly one accepted encoding.
std::string Base64UrlEncode(std::span<const uint8_t> data);
Result<Bytes> Base64UrlDecode(std::string_view text);

// Cryptographically secure random bytes / integer.
Bytes RandomBytes(size_t n);
uint64_t RandomU64();

// Constant-time comparison (sodium_memcmp) for secrets and their hashes. Returns false
// when the lengths differ (the length itself is not secret).
bool ConstantTimeEqual(std::string_view a, std::string_view b);

// Unkeyed BLAKE2b with a 32-byte digest (crypto_generichash).
using Hash256 = std::array<uint8_t, 32>;
Hash256 Blake2b256(std::span<const uint8_t> data);
// BLAKE2b-256 of the concatenation a ‖ b (no separator, no length prefix).
Hash256 Blake2b256(std::string_view a, std::string_view b);

// Owns secret bytes; zeroes them (sodium_memzero) on destruction and when moved from.
// Move-only. A default-constructed or moved-from SecretBytes is empty.
class SecretBytes {
 public:
  SecretBytes() = default;
  // n zero bytes, to be filled through data().
  explicit SecretBytes(size_t n);
  // A copy of `data` (the caller remains responsible for wiping its own copy).
  explicit SecretBytes(std::span<const uint8_t> data);
  ~SecretBytes();

  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::span<const uint8_t> span() const { return {data_, size_}; }
  std::span<uint8_t> mutable_span() { return {data_, size_}; }

 private:
  void Wipe();

  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Opaque random token (refresh tokens, admin token): 32 random bytes, base64url
// (43 characters). Hand it to the client once; store only HashOpaqueToken(token).
std::string NewOpaqueToken();
// Stored form of an opaque token: hex(BLAKE2b-256(token)), 64 characters. Compare
// stored forms with ConstantTimeEqual.
std::string HashOpaqueToken(std::string_view token);

}  // namespace chatd::crypto
