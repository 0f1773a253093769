// crypto/keys.h — Ed25519 node keys: generation, key files, signing, verification.
//
// Contract:
//   * PublicKey is a plain value (32 bytes), freely copied and shared between threads.
//     Its text form is "ed25519:" + base64url(32 bytes) (52 characters); ParsePublicKey
//     accepts exactly that form and nothing else.
//   * KeyPair owns its secret key in a SecretBytes (wiped on destruction); it is
//     move-only. A moved-from KeyPair must not be used except to be destroyed or assigned
//     to. All const methods (public_key, Sign, SaveFile) are safe to call concurrently
//     from any number of threads; Ed25519 signing is deterministic (no randomness).
//   * VerifySignature is a pure function, safe from any thread, and never crashes on
//     untrusted input (wrong lengths simply fail verification).
//
// Key file format (one line, ASCII):
//
//     chatd-ed25519-seed-v1 <base64url of the 32-byte Ed25519 seed>\n
//
// The seed is the 32-byte RFC 8032 private key; the public key is derived from it.
// The trailing newline is written by SaveFile and optional when loading; nothing else
// (spaces, comments, CRLF, a second line) is accepted. The file must be a regular file
// with mode 0600 or stricter: LoadFile refuses a file that group or others could read
// or write (mode & 077), and SaveFile creates the file with O_CREAT|O_EXCL and mode
// 0600, refusing to overwrite an existing file (Code::kConflict).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/status.h"
#include "crypto/bytes.h"

namespace chatd::crypto {

struct PublicKey {
  std::array<uint8_t, 32> bytes{};
  // "ed25519:" + base64url(bytes), no padding.
  std::string ToString() const;
  bool operator==(const PublicKey&) const = default;
};

// Parses the ToString form. kBadRequest on anything else (wrong prefix, bad base64url,
// wrong length).
Result<PublicKey> ParsePublicKey(std::string_view text);

class KeyPair {
 public:
  // A fresh random key pair.
  static KeyPair Generate();
  // Deterministic key pair from a 32-byte seed (kBadRequest if the seed is not 32 bytes).
  static Result<KeyPair> FromSeed(std::span<const uint8_t> seed32);
  // Loads a key file (format above). Errors: kNotFound (missing), kForbidden (mode
  // allows group/other access, or not a regular file), kCorrupt (bad contents),
  // kIo (other I/O failures).
  static Result<KeyPair> LoadFile(const std::string& path);
  // Writes the key file (format above) with mode 0600 and fsyncs it. Errors: kConflict
  // if the path already exists (never overwrites), kIo otherwise.
  Status SaveFile(const std::string& path) const;

  KeyPair(KeyPair&&) noexcept = default;
  KeyPair& operator=(KeyPair&&) noexcept = default;
  KeyPair(const KeyPair&) = delete;
  KeyPair& operator=(const KeyPair&) = delete;

  const PublicKey& public_key() const { return public_key_; }
  // Detached Ed25519 signature of msg.
  std::array<uint8_t, 64> Sign(std::span<const uint8_t> msg) const;
  // A 32-byte key for another purpose, derived from the seed: BLAKE2b-256 keyed with the
  // seed over `context` (e.g. "chatd file url v1"). Distinct contexts give independent
  // keys; nothing derived reveals the seed. Empty for a moved-from key pair.
  SecretBytes DeriveKey(std::string_view context) const;

 private:
  KeyPair() = default;

  SecretBytes secret_;  // libsodium layout: seed (32) ‖ public key (32)
  PublicKey public_key_;
};

// True iff sig64 is a valid Ed25519 signature of msg by pk. False if sig64 is not
// exactly 64 bytes.
bool VerifySignature(const PublicKey& pk, std::span<const uint8_t> msg,
                     std::span<const uint8_t> sig64);

}  // namespace chatd::crypto
