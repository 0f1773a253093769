// Unit tests for crypto/device_keys.h: standard base64, and parsing a published device
// key bundle (lengths, bounds, duplicate key ids, the signed prekey's signature).
#include <sodium.h>

#include <catch2/catch.hpp>
#include <string>

#include "crypto/device_keys.h"

namespace chatd::crypto {
namespace {

struct Keys {
  std::array<uint8_t, 32> ik_pk{};
  std::array<uint8_t, 64> ik_sk{};
  std::array<uint8_t, 32> spk{};
  std::array<uint8_t, 64> sig{};
  Keys() {
    Init();
    crypto_sign_keypair(ik_pk.data(), ik_sk.data());
    std::array<uint8_t, 32> spk_sk{};
    crypto_box_keypair(spk.data(), spk_sk.data());
    crypto_sign_detached(sig.data(), nullptr, spk.data(), spk.size(), ik_sk.data());
  }
};

std::string Bundle(const Keys& k, const std::string& extra = "", const std::string& sig_override = "") {
  return R"({"identity_key":")" + Base64Encode(k.ik_pk) + R"(","signed_prekey":{"key_id":7,"public_key":")" +
         Base64Encode(k.spk) + R"(","signature":")" + (sig_override.empty() ? Base64Encode(k.sig) : sig_override) +
         R"("})" + extra + "}";
}

Result<DeviceBundle> Parse(const std::string& text, size_t max = kMaxOneTimePrekeysPerRequest) {
  json::Doc doc;
  if (Status s = json::Parse(text, &doc); !s.ok()) return s;
  return ParseDeviceBundle(doc, max);
}

std::string Otp(uint32_t id, const std::string& pk) {
  return R"({"key_id":)" + std::to_string(id) + R"(,"public_key":")" + pk + R"("})";
}

}  // namespace

TEST_CASE("Base64: standard alphabet with padding, one encoding per byte string", "[unit][crypto][keys]") {
  Bytes b = {0xfb, 0xff, 0x00};
  CHECK(Base64Encode(b) == "+/8A");
  CHECK(Base64Encode(Bytes{0x01}) == "AQ==");
  auto d = Base64Decode("AQ==");
  REQUIRE(d.ok());
  CHECK(*d == Bytes{0x01});
  CHECK(Base64Decode("").ok());
  CHECK_FALSE(Base64Decode("AQ").ok());     // padding missing
  CHECK_FALSE(Base64Decode("AR==").ok());   // non-zero trailing bits
  CHECK_FALSE(Base64Decode("-_8A").ok());   // url alphabet
  CHECK_FALSE(Base64Decode("+/8A ").ok());  // whitespace
  CHECK_FALSE(Base64Decode("AQ==AQ==").ok());
}

TEST_CASE("ParseDeviceBundle accepts a well-signed bundle and its one-time prekeys", "[unit][crypto][keys]") {
  Keys k;
  std::string otps =
      R"(,"one_time_prekeys":[)" + Otp(1, Base64Encode(k.spk)) + "," + Otp(4294967295u, Base64Encode(k.spk)) + "]";
  auto b = Parse(Bundle(k, otps));
  REQUIRE(b.ok());
  CHECK(b->identity_key == k.ik_pk);
  CHECK(b->spk_id == 7);
  CHECK(b->spk == k.spk);
  REQUIRE(b->one_time.size() == 2);
  CHECK(b->one_time[1].key_id == 4294967295u);
  auto none = Parse(Bundle(k));
  REQUIRE(none.ok());
  CHECK(none->one_time.empty());
}

TEST_CASE("ParseDeviceBundle refuses bad input naming the field", "[unit][crypto][keys]") {
  Keys k;
  auto msg = [](const Result<DeviceBundle>& r) { return r.ok() ? std::string("ok") : r.status().message(); };
  // A signature by another key, and one over other bytes.
  Keys other;
  auto r = Parse(Bundle(k, "", Base64Encode(other.sig)));
  CHECK(msg(r).find("'signed_prekey.signature'") != std::string::npos);
  CHECK(r.status().code() == Code::kBadRequest);
  // Bad base64 and wrong lengths.
  std::string text = Bundle(k);
  std::string ik = Base64Encode(k.ik_pk);
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string t = text;
    t.replace(t.find(from), from.size(), to);
    return t;
  };
  CHECK(msg(Parse(replaced(ik, "not base64!"))).find("'identity_key' is not base64") != std::string::npos);
  CHECK(msg(Parse(replaced(ik, Base64Encode(Bytes(31, 1))))).find("'identity_key' must be 32 bytes") !=
        std::string::npos);
  CHECK(msg(Parse(replaced(Base64Encode(k.spk), Base64Encode(Bytes(33, 1))))).find("'signed_prekey.public_key'") !=
        std::string::npos);
  CHECK(msg(Parse(replaced(R"("key_id":7)", R"("key_id":4294967296)"))).find("'signed_prekey.key_id'") !=
        std::string::npos);
  CHECK(msg(Parse(replaced(R"("key_id":7)", R"("key_id":-1)"))).find("'signed_prekey.key_id'") != std::string::npos);
  CHECK(msg(Parse(R"({"signed_prekey":{}})")).find("'identity_key' is required") != std::string::npos);
  CHECK(msg(Parse(R"({"identity_key":")" + ik + R"("})")).find("'signed_prekey' is required") != std::string::npos);
  // One-time prekeys: a bad one, a repeated id, too many.
  std::string pk = Base64Encode(k.spk);
  CHECK(msg(Parse(Bundle(k, R"(,"one_time_prekeys":[)" + Otp(1, pk) + "," + Otp(2, "AQ==") + "]")))
            .find("'one_time_prekeys[1].public_key' must be 32 bytes") != std::string::npos);
  CHECK(msg(Parse(Bundle(k, R"(,"one_time_prekeys":[)" + Otp(5, pk) + "," + Otp(5, pk) + "]")))
            .find("'one_time_prekeys[1].key_id' repeats") != std::string::npos);
  std::string many = R"(,"one_time_prekeys":[)";
  for (int i = 0; i < 101; ++i) many += (i ? "," : "") + Otp(static_cast<uint32_t>(i), pk);
  CHECK(msg(Parse(Bundle(k, many + "]"))).find("at most 100") != std::string::npos);
  CHECK(msg(Parse(Bundle(k, R"(,"one_time_prekeys":[)" + Otp(1, pk) + "]"), 0)).find("at most 0") != std::string::npos);
  CHECK(msg(Parse(Bundle(k, R"(,"one_time_prekeys":{})"))).find("'one_time_prekeys' must be an array") !=
        std::string::npos);
}

}  // namespace chatd::crypto
