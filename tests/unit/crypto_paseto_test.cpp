// Unit tests for crypto/paseto.h: the official PASETO v4.public test vectors
// (paseto-standard/test-vectors, v4.json, 4-S-1..4-S-3) plus tampering and footers.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "crypto/bytes.h"
#include "crypto/keys.h"
#include "crypto/paseto.h"

namespace chatd::crypto {
namespace {

// From v4.json. "secret-key" there is libsodium's 64-byte layout (seed ‖ public key);
// its first 32 bytes are the seed.
constexpr const char* kSecretKeyHex =
    "b4cbfb43df4ce210727d953e4a713307fa19bb7d9f85041438d9e11b942a3774"
    "1eb9dbbbbc047c03fd70604e0071f0987e16b28b757225c11f00415d0e20b1a2";
constexpr const char* kPublicKeyHex =
    "1eb9dbbbbc047c03fd70604e0071f0987e16b28b757225c11f00415d0e20b1a2";
constexpr const char* kPayload =
    R"({"data":"this is a signed message","exp":"2022-01-01T00:00:00+00:00"})";
constexpr const char* kKidFooter = R"({"kid":"zVhMiPBP9fRf2snEcT7gFTioeA9COcNy9DfgL1W60haN"})";

struct OfficialVector {
  const char* name;
  const char* footer;
  const char* implicit;
  const char* token;
};

const OfficialVector kVectors[] = {
    {"4-S-1", "", "",
     "v4.public.eyJkYXRhIjoidGhpcyBpcyBhIHNpZ25lZCBtZXNzYWdlIiwiZXhwIjoiMjAyMi0wMS0wMVQwMDow"
     "MDowMCswMDowMCJ9bg_XBBzds8lTZShVlwwKSgeKpLT3yukTw6JUz3W4h_ExsQV-P0V54zemZDcAxFaSeef1Q"
     "lXEFtkqxT1ciiQEDA"},
    {"4-S-2", kKidFooter, "",
     "v4.public.eyJkYXRhIjoidGhpcyBpcyBhIHNpZ25lZCBtZXNzYWdlIiwiZXhwIjoiMjAyMi0wMS0wMVQwMDow"
     "MDowMCswMDowMCJ9v3Jt8mx_TdM2ceTGoqwrh4yDFn0XsHvvV_D0DtwQxVrJEBMl0F2caAdgnpKlt4p7xBnx1"
     "HcO-SPo8FPp214HDw.eyJraWQiOiJ6VmhNaVBCUDlmUmYyc25FY1Q3Z0ZUaW9lQTlDT2NOeTlEZmdMMVc2MGh"
     "hTiJ9"},
    {"4-S-3", kKidFooter, R"({"test-vector":"4-S-3"})",
     "v4.public.eyJkYXRhIjoidGhpcyBpcyBhIHNpZ25lZCBtZXNzYWdlIiwiZXhwIjoiMjAyMi0wMS0wMVQwMDow"
     "MDowMCswMDowMCJ9NPWciuD3d0o5eXJXG5pJy-DiVEoyPYWs1YSTwWHNJq6DZD3je5gf-0M4JR9ipdUSJbIov"
     "zmBECeaWmaqcaP0DQ.eyJraWQiOiJ6VmhNaVBCUDlmUmYyc25FY1Q3Z0ZUaW9lQTlDT2NOeTlEZmdMMVc2MGh"
     "hTiJ9"},
};

KeyPair VectorKey() {
  auto sk = HexDecode(kSecretKeyHex);
  REQUIRE(sk.ok());
  auto kp = KeyPair::FromSeed(std::span(*sk).first(32));
  REQUIRE(kp.ok());
  REQUIRE(HexEncode(kp->public_key().bytes) == kPublicKeyHex);
  return std::move(kp).value();
}

void ExpectUnauthorized(const Result<std::string>& r, const std::string& message) {
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kUnauthorized);
  CHECK(r.status().message() == message);
}

TEST_CASE("crypto paseto: official v4.public vectors sign and verify", "[crypto]") {
  KeyPair key = VectorKey();
  for (const auto& v : kVectors) {
    INFO(v.name);
    // Signing is deterministic, so we reproduce the exact token.
    CHECK(PasetoSign(key, kPayload, v.footer, v.implicit) == v.token);
    auto payload = PasetoVerify(key.public_key(), v.token, v.footer, v.implicit);
    REQUIRE(payload.ok());
    CHECK(*payload == kPayload);
    // An empty expected footer accepts whatever footer the token carries.
    auto any = PasetoVerify(key.public_key(), v.token, {}, v.implicit);
    REQUIRE(any.ok());
    CHECK(*any == kPayload);
    auto footer = PasetoFooter(v.token);
    REQUIRE(footer.ok());
    CHECK(*footer == v.footer);
  }
}

TEST_CASE("crypto paseto: implicit assertion and key must match", "[crypto]") {
  KeyPair key = VectorKey();
  const auto& s3 = kVectors[2];
  ExpectUnauthorized(PasetoVerify(key.public_key(), s3.token, s3.footer, ""), "bad signature");
  ExpectUnauthorized(
      PasetoVerify(key.public_key(), s3.token, s3.footer, R"({"test-vector":"4-S-2"})"),
      "bad signature");
  const auto& s1 = kVectors[0];
  ExpectUnauthorized(PasetoVerify(key.public_key(), s1.token, "", "unexpected"), "bad signature");
  KeyPair other = KeyPair::Generate();
  ExpectUnauthorized(PasetoVerify(other.public_key(), s1.token), "bad signature");
}

TEST_CASE("crypto paseto: footer checks", "[crypto]") {
  KeyPair key = KeyPair::Generate();
  const std::string token = PasetoSign(key, R"({"sub":"alice@eu1"})", R"({"kid":"k1"})");
  REQUIRE(PasetoVerify(key.public_key(), token, R"({"kid":"k1"})").ok());
  // A token with a different footer fails when a footer is expected.
  ExpectUnauthorized(PasetoVerify(key.public_key(), token, R"({"kid":"k2"})"), "footer mismatch");
  const std::string no_footer = PasetoSign(key, R"({"sub":"alice@eu1"})");
  CHECK(no_footer.find('.', 10) == std::string::npos);
  ExpectUnauthorized(PasetoVerify(key.public_key(), no_footer, R"({"kid":"k1"})"),
                     "footer mismatch");
  auto empty_footer = PasetoFooter(no_footer);
  REQUIRE(empty_footer.ok());
  CHECK(empty_footer->empty());

  // Swapping in another footer breaks the signature even when the caller expects it.
  const std::string swapped =
      token.substr(0, token.rfind('.') + 1) + Base64UrlEncode(AsBytes(R"({"kid":"k2"})"));
  ExpectUnauthorized(PasetoVerify(key.public_key(), swapped, R"({"kid":"k2"})"), "bad signature");
  ExpectUnauthorized(PasetoVerify(key.public_key(), swapped), "bad signature");
  // Stripping the footer breaks it too.
  ExpectUnauthorized(PasetoVerify(key.public_key(), token.substr(0, token.rfind('.'))),
                     "bad signature");
}

TEST_CASE("crypto paseto: tampered and malformed tokens fail", "[crypto]") {
  KeyPair key = VectorKey();
  const std::string token = kVectors[1].token;
  const size_t footer_dot = token.rfind('.');

  // Flip each character of the signed part to another base64url character.
  for (size_t i = 10; i < footer_dot; ++i) {
    std::string bad = token;
    bad[i] = bad[i] == 'A' ? 'B' : 'A';
    auto r = PasetoVerify(key.public_key(), bad, kKidFooter);
    REQUIRE_FALSE(r.ok());
    REQUIRE(r.status().code() == Code::kUnauthorized);
  }
  // The payload inside a re-encoded token cannot be changed.
  auto raw = Base64UrlDecode(std::string_view(token).substr(10, footer_dot - 10));
  REQUIRE(raw.ok());
  (*raw)[9] ^= 0x01;
  std::string forged = "v4.public." + Base64UrlEncode(*raw) + token.substr(footer_dot);
  ExpectUnauthorized(PasetoVerify(key.public_key(), forged, kKidFooter), "bad signature");

  const std::string body = token.substr(0, footer_dot);
  for (const std::string& bad : std::vector<std::string>{
           "", "v4.public.", "v4.public", "v4.local." + token.substr(10),
           "v3.public." + token.substr(10), "V4.public." + token.substr(10), " " + token,
           token + " ", token + ".", body + ".", body + ".e30.e30", body + "=",
           "v4.public." + std::string(85, 'A'), "v4.public." + Base64UrlEncode(RandomBytes(63)),
           body + ".!!", body + ".e30=", std::string("v4.public.\0", 11)}) {
    INFO(bad);
    ExpectUnauthorized(PasetoVerify(key.public_key(), bad), "malformed token");
    CHECK_FALSE(PasetoFooter(bad).ok());
  }
  // 64 zero bytes parse (empty message) but do not verify.
  ExpectUnauthorized(PasetoVerify(key.public_key(), "v4.public." + Base64UrlEncode(Bytes(64))),
                     "bad signature");
}

TEST_CASE("crypto paseto: round trip with arbitrary bytes", "[crypto]") {
  KeyPair key = KeyPair::Generate();
  std::string payload(300, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 7);
  std::string footer = "arbitrary-string-that-isn't-json";
  const std::string token = PasetoSign(key, payload, footer, "aud=eu1");
  auto r = PasetoVerify(key.public_key(), token, footer, "aud=eu1");
  REQUIRE(r.ok());
  CHECK(*r == payload);
  auto empty = PasetoVerify(key.public_key(), PasetoSign(key, ""));
  REQUIRE(empty.ok());
  CHECK(empty->empty());
}

}  // namespace
}  // namespace chatd::crypto
