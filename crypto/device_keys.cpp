#include "crypto/device_keys.h"

#include <sodium.h>

#include <set>

namespace chatd::crypto {

namespace {

constexpr size_t kMaxKeyText = 128;  // base64 of 64 bytes is 88 characters

// A base64 field of exactly `n` bytes, into out; errors name `field`.
template <size_t N>
Status ReadKey(const json::Value& obj, const char* key, const std::string& field, std::array<uint8_t, N>* out,
               const char* what) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull()) return BadRequest("field '" + field + "' is required");
  if (!it->value.IsString()) return BadRequest("field '" + field + "' must be a base64 string");
  std::string_view text(it->value.GetString(), it->value.GetStringLength());
  if (text.size() > kMaxKeyText) return BadRequest("field '" + field + "' is too long for a " + what);
  auto bytes = Base64Decode(text);
  if (!bytes.ok()) return BadRequest("field '" + field + "' is not base64 (standard alphabet, with padding)");
  if (bytes->size() != N) {
    return BadRequest("field '" + field + "' must be " + std::to_string(N) + " bytes (" + what + "), not " +
                      std::to_string(bytes->size()));
  }
  std::copy(bytes->begin(), bytes->end(), out->begin());
  return Status::Ok();
}

Result<uint32_t> ReadKeyId(const json::Value& obj, const std::string& field) {
  auto it = obj.FindMember("key_id");
  if (it == obj.MemberEnd() || it->value.IsNull()) return BadRequest("field '" + field + "' is required");
  if (!it->value.IsUint64() || it->value.GetUint64() > UINT32_MAX) {
    return BadRequest("field '" + field + "' must be an integer from 0 to 4294967295");
  }
  return static_cast<uint32_t>(it->value.GetUint64());
}

}  // namespace

std::string Base64Encode(std::span<const uint8_t> data) {
  Init();
  if (data.empty()) return {};
  std::string out(sodium_base64_encoded_len(data.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), data.data(), data.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminator
  return out;
}

Result<Bytes> Base64Decode(std::string_view text) {
  Init();
  if (text.empty()) return Bytes{};  // libsodium's pointers must not be null
  if (text.size() % 4 != 0) return BadRequest("base64 length is not a multiple of 4");
  Bytes out(text.size() / 4 * 3);
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &len, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != text.data() + text.size()) {
    return BadRequest("malformed base64");
  }
  out.resize(len);
  if (Base64Encode(out) != text) return BadRequest("non-canonical base64");  // stray trailing bits
  return out;
}

bool VerifyPrekeySignature(std::span<const uint8_t, 32> identity_key, std::span<const uint8_t, 32> prekey,
                           std::span<const uint8_t, 64> sig) {
  Init();
  return crypto_sign_verify_detached(sig.data(), prekey.data(), prekey.size(), identity_key.data()) == 0;
}

Result<DeviceBundle> ParseDeviceBundle(const json::Value& obj, size_t max_one_time) {
  if (!obj.IsObject()) return BadRequest("the body must be a JSON object");
  DeviceBundle b;
  if (Status s = ReadKey(obj, "identity_key", "identity_key", &b.identity_key, "an Ed25519 public key"); !s.ok()) {
    return s;
  }
  auto spk = obj.FindMember("signed_prekey");
  if (spk == obj.MemberEnd() || spk->value.IsNull()) return BadRequest("field 'signed_prekey' is required");
  if (!spk->value.IsObject())
    return BadRequest("field 'signed_prekey' must be an object {key_id, public_key, signature}");
  auto id = ReadKeyId(spk->value, "signed_prekey.key_id");
  if (!id.ok()) return id.status();
  b.spk_id = *id;
  if (Status s = ReadKey(spk->value, "public_key", "signed_prekey.public_key", &b.spk, "an X25519 public key");
      !s.ok()) {
    return s;
  }
  if (Status s = ReadKey(spk->value, "signature", "signed_prekey.signature", &b.spk_sig, "an Ed25519 signature");
      !s.ok()) {
    return s;
  }
  if (!VerifyPrekeySignature(b.identity_key, b.spk, b.spk_sig)) {
    return BadRequest(
        "field 'signed_prekey.signature' is not identity_key's Ed25519 signature over signed_prekey.public_key");
  }
  auto otp = obj.FindMember("one_time_prekeys");
  if (otp == obj.MemberEnd() || otp->value.IsNull()) return b;
  if (!otp->value.IsArray()) return BadRequest("field 'one_time_prekeys' must be an array of {key_id, public_key}");
  if (otp->value.Size() > max_one_time) {
    return BadRequest("field 'one_time_prekeys' holds " + std::to_string(otp->value.Size()) + " keys; at most " +
                      std::to_string(max_one_time) + " per request");
  }
  std::set<uint32_t> seen;
  size_t i = 0;
  for (const auto& v : otp->value.GetArray()) {
    std::string field = "one_time_prekeys[" + std::to_string(i++) + "]";
    if (!v.IsObject()) return BadRequest("field '" + field + "' must be an object {key_id, public_key}");
    OneTimePrekey k;
    auto kid = ReadKeyId(v, field + ".key_id");
    if (!kid.ok()) return kid.status();
    k.key_id = *kid;
    if (!seen.insert(k.key_id).second) {
      return BadRequest("field '" + field + ".key_id' repeats key id " + std::to_string(k.key_id));
    }
    if (Status s = ReadKey(v, "public_key", field + ".public_key", &k.public_key, "an X25519 public key"); !s.ok()) {
      return s;
    }
    b.one_time.push_back(k);
  }
  return b;
}

}  // namespace chatd::crypto
