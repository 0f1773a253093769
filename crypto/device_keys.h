// crypto/device_keys.h — device key bundles for end-to-end encryption (X3DH-style), as
// clients publish them and as device_keys envelopes (kind 5) carry them.
//
// Contract:
//   * Pure functions over untrusted input: they never crash or assert, and answer a
//     kBadRequest Status whose message names the offending field ("signed_prekey.signature",
//     "one_time_prekeys[3].key_id"). Safe from any thread.
//   * Keys travel as standard base64 (RFC 4648 §4, '+' '/', with '=' padding). The decoder
//     accepts exactly one encoding per byte string (no whitespace, no missing padding,
//     no non-zero trailing bits), so stored keys compare byte for byte.
//   * identity_key is an Ed25519 public key (32 bytes); signed_prekey.public_key an X25519
//     public key (32 bytes); signed_prekey.signature the Ed25519 signature (64 bytes) by
//     identity_key over the prekey's 32 raw bytes. Parsing verifies that signature.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"
#include "base/status.h"
#include "crypto/bytes.h"

namespace chatd::crypto {

inline constexpr size_t kMaxOneTimePrekeysPerRequest = 100;

struct OneTimePrekey {
  uint32_t key_id = 0;
  std::array<uint8_t, 32> public_key{};
};

struct DeviceBundle {
  std::array<uint8_t, 32> identity_key{};
  uint32_t spk_id = 0;
  std::array<uint8_t, 32> spk{};
  std::array<uint8_t, 64> spk_sig{};
  std::vector<OneTimePrekey> one_time;  // request order; key ids unique
};

// Standard padded base64 (see the contract).
std::string Base64Encode(std::span<const uint8_t> data);
Result<Bytes> Base64Decode(std::string_view text);

// Whether sig is identity_key's Ed25519 signature over the 32 prekey bytes.
bool VerifyPrekeySignature(std::span<const uint8_t, 32> identity_key, std::span<const uint8_t, 32> prekey,
                           std::span<const uint8_t, 64> sig);

// Parses {identity_key, signed_prekey: {key_id, public_key, signature}, one_time_prekeys?:
// [{key_id, public_key}]}, checks every length, the bounds (at most max_one_time one-time
// prekeys, key ids uint32, no key id twice) and the signed prekey's signature.
Result<DeviceBundle> ParseDeviceBundle(const json::Value& obj, size_t max_one_time = kMaxOneTimePrekeysPerRequest);

}  // namespace chatd::crypto
