#include "crypto/bytes.h"

#include <sodium.h>

#include <cstdlib>
#include <cstring>
#include <utility>

#include "base/log.h"

namespace chatd::crypto {

void Init() {
  // A function-local static is initialized exactly once, even under concurrent first
  // calls (C++11 "magic statics"); sodium_init() is itself idempotent.
  static const bool initialized = [] {
    if (sodium_init() < 0) {
      log::Error("libsodium initialization failed; refusing to run without a CSPRNG");
      std::abort();
    }
    return true;
  }();
  (void)initialized;
}

std::string HexEncode(std::span<const uint8_t> data) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.resize(data.size() * 2);
  for (size_t i = 0; i < data.size(); ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 0x0f];
  }
  return out;
}

Result<Bytes> HexDecode(std::string_view text) {
  Init();
  if (text.size() % 2 != 0) return BadRequest("hex: odd number of digits");
  if (text.empty()) return Bytes{};
  Bytes out(text.size() / 2);
  size_t out_len = 0;
  // With hex_end == nullptr libsodium fails unless every character was consumed.
  if (sodium_hex2bin(out.data(), out.size(), text.data(), text.size(), nullptr, &out_len,
                     nullptr) != 0 ||
      out_len != out.size()) {
    return BadRequest("hex: invalid character");
  }
  return out;
}

std::string Base64UrlEncode(std::span<const uint8_t> data) {
  Init();
  constexpr int kVariant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  // sodium_base64_encoded_len counts the trailing NUL.
  std::string out(sodium_base64_encoded_len(data.size(), kVariant), '\0');
  sodium_bin2base64(out.data(), out.size(), data.data(), data.size(), kVariant);
  out.resize(out.size() - 1);
  return out;
}

Result<Bytes> Base64UrlDecode(std::string_view text) {
  Init();
  // Valid unpadded lengths are 0, 2 or 3 mod 4. Screen the alphabet ourselves too, so
  // the contract does not hinge on libsodium's treatment of odd characters.
  if (text.size() % 4 == 1) return BadRequest("base64url: impossible length");
  for (char c : text) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok) return BadRequest("base64url: invalid character");
  }
  Bytes out(text.size() / 4 * 3 + 3);
  size_t out_len = 0;
  // libsodium rejects non-zero trailing bits, so only canonical encodings decode.
  if (sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &out_len,
                        nullptr, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
    return BadRequest("base64url: non-canonical encoding");
  }
  out.resize(out_len);
  return out;
}

Bytes RandomBytes(size_t n) {
  Init();
  Bytes out(n);
  if (n > 0) randombytes_buf(out.data(), n);
  return out;
}

uint64_t RandomU64() {
  Init();
  uint64_t v = 0;
  randombytes_buf(&v, sizeof(v));
  return v;
}

bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  Init();
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

Hash256 Blake2b256(std::span<const uint8_t> data) {
  Init();
  Hash256 out{};
  crypto_generichash(out.data(), out.size(), data.data(), data.size(), nullptr, 0);
  return out;
}

Hash256 Blake2b256(std::string_view a, std::string_view b) {
  Init();
  Hash256 out{};
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, out.size());
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(a.data()), a.size());
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(b.data()), b.size());
  crypto_generichash_final(&st, out.data(), out.size());
  sodium_memzero(&st, sizeof(st));  // the state may have absorbed secrets (tokens)
  return out;
}

// ---- SecretBytes ---------------------------------------------------------------------

SecretBytes::SecretBytes(size_t n) {
  if (n == 0) return;
  data_ = new uint8_t[n]();
  size_ = n;
}

SecretBytes::SecretBytes(std::span<const uint8_t> data) : SecretBytes(data.size()) {
  if (data_ != nullptr) std::memcpy(data_, data.data(), size_);
}

SecretBytes::~SecretBytes() { Wipe(); }

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    Wipe();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void SecretBytes::Wipe() {
  if (data_ != nullptr) {
    sodium_memzero(data_, size_);
    delete[] data_;
  }
  data_ = nullptr;
  size_ = 0;
}

// ---- Opaque tokens -------------------------------------------------------------------

std::string NewOpaqueToken() {
  Init();
  std::array<uint8_t, 32> raw{};
  randombytes_buf(raw.data(), raw.size());
  std::string token = Base64UrlEncode(raw);
  sodium_memzero(raw.data(), raw.size());
  return token;
}

std::string HashOpaqueToken(std::string_view token) {
  return HexEncode(Blake2b256(AsBytes(token)));
}

}  // namespace chatd::crypto
