// Unit tests for crypto/bytes.h and crypto/keys.h: encodings, hashing, randomness,
// secrets, opaque tokens, Ed25519 keys and key files.
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "crypto/bytes.h"
#include "crypto/keys.h"

namespace chatd::crypto {
namespace {

Bytes B(std::string_view s) { return Bytes(s.begin(), s.end()); }

// A fresh temporary directory, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "chatd-crypto-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const std::string& path, const std::string& content, mode_t mode) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
  }
  REQUIRE(::chmod(path.c_str(), mode) == 0);
}

Bytes Seed0to31() {
  Bytes seed(32);
  for (size_t i = 0; i < seed.size(); ++i) seed[i] = static_cast<uint8_t>(i);
  return seed;
}

TEST_CASE("crypto bytes: hex round trip and rejection", "[crypto]") {
  CHECK(HexEncode(Bytes{}) == "");
  CHECK(HexEncode(Bytes{0x00, 0x01, 0xab, 0xff}) == "0001abff");
  auto decoded = HexDecode("0001ABff");
  REQUIRE(decoded.ok());
  CHECK(*decoded == Bytes{0x00, 0x01, 0xab, 0xff});
  REQUIRE(HexDecode("").ok());
  CHECK(HexDecode("")->empty());

  Bytes random = RandomBytes(257);
  auto back = HexDecode(HexEncode(random));
  REQUIRE(back.ok());
  CHECK(*back == random);

  for (const char* bad : {"0", "abc", "zz", "0x00", " 00", "00 ", "0g", "00\n", "-1"}) {
    INFO(bad);
    auto r = HexDecode(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kBadRequest);
  }
  CHECK_FALSE(HexDecode(std::string_view("00\0"
                                         "0",
                                         4))
                  .ok());
}

TEST_CASE("crypto bytes: base64url RFC 4648 vectors, no padding", "[crypto]") {
  const std::pair<const char*, const char*> kVectors[] = {
      {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
      {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
  };
  for (auto [plain, encoded] : kVectors) {
    INFO(plain);
    CHECK(Base64UrlEncode(B(plain)) == encoded);
    auto d = Base64UrlDecode(encoded);
    REQUIRE(d.ok());
    CHECK(*d == B(plain));
  }
  // The URL-safe alphabet: 0xfb 0xff is "+/8" in standard base64.
  CHECK(Base64UrlEncode(Bytes{0xfb, 0xff}) == "-_8");
  REQUIRE(Base64UrlDecode("-_8").ok());
  CHECK(*Base64UrlDecode("-_8") == Bytes{0xfb, 0xff});

  for (size_t n = 0; n < 70; ++n) {
    Bytes random = RandomBytes(n);
    auto back = Base64UrlDecode(Base64UrlEncode(random));
    REQUIRE(back.ok());
    CHECK(*back == random);
  }
}

TEST_CASE("crypto bytes: base64url rejects padding, bad characters, non-canonical", "[crypto]") {
  for (const char* bad : {"Zg==", "Zm8=", "Zg=", "+_8", "-/8", "Z", "Zm9vY", "Zh", "Zm9", " Zg",
                          "Zg ", "Zg\n", "Zm9v.Zg", "Zm\"9", "Zm9v\xc3\xa9"}) {
    INFO(bad);
    auto r = Base64UrlDecode(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kBadRequest);
  }
  // "Zh" and "Zm9" carry non-zero trailing bits: only "Zg" / "Zm8" are canonical.
  CHECK(Base64UrlDecode("Zg").ok());
  CHECK_FALSE(Base64UrlDecode(std::string_view("Zg\0\0", 4)).ok());
}

TEST_CASE("crypto bytes: randomness, constant-time compare, BLAKE2b-256", "[crypto]") {
  CHECK(RandomBytes(0).empty());
  CHECK(RandomBytes(32).size() == 32);
  CHECK(RandomBytes(32) != RandomBytes(32));
  std::set<uint64_t> seen;
  for (int i = 0; i < 100; ++i) seen.insert(RandomU64());
  CHECK(seen.size() == 100);

  CHECK(ConstantTimeEqual("", ""));
  CHECK(ConstantTimeEqual("secret", "secret"));
  CHECK_FALSE(ConstantTimeEqual("secret", "secreT"));
  CHECK_FALSE(ConstantTimeEqual("secret", "secret2"));
  CHECK_FALSE(ConstantTimeEqual("", "x"));

  // Reference values from Python's hashlib.blake2b(digest_size=32).
  CHECK(HexEncode(Blake2b256(Bytes{})) ==
        "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
  CHECK(HexEncode(Blake2b256(B("abc"))) ==
        "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
  // The two-part overload hashes the plain concatenation.
  CHECK(HexEncode(Blake2b256("hello ", "world")) ==
        "256c83b297114d201b30179f3f0ef0cace9783622da5974326b436178aeef610");
  CHECK(Blake2b256("", "abc") == Blake2b256(B("abc")));
  CHECK(Blake2b256("ab", "c") == Blake2b256("abc", ""));
}

TEST_CASE("crypto bytes: SecretBytes owns, moves and empties", "[crypto]") {
  SecretBytes empty;
  CHECK(empty.empty());
  CHECK(empty.span().empty());

  Bytes raw = {1, 2, 3, 4};
  SecretBytes a(raw);
  REQUIRE(a.size() == 4);
  CHECK(Bytes(a.span().begin(), a.span().end()) == raw);
  SecretBytes b(std::move(a));
  CHECK(a.empty());  // NOLINT(bugprone-use-after-move): moved-from is specified empty
  CHECK(b.size() == 4);
  SecretBytes c(8);
  CHECK(c.size() == 8);
  CHECK(c.data()[7] == 0);
  c = std::move(b);
  CHECK(c.size() == 4);
  CHECK(c.data()[3] == 4);
  CHECK(b.empty());  // NOLINT(bugprone-use-after-move)
}

TEST_CASE("crypto bytes: opaque tokens and their stored form", "[crypto]") {
  std::string t1 = NewOpaqueToken();
  std::string t2 = NewOpaqueToken();
  CHECK(t1.size() == 43);
  CHECK(t1 != t2);
  auto raw = Base64UrlDecode(t1);
  REQUIRE(raw.ok());
  CHECK(raw->size() == 32);

  std::string h1 = HashOpaqueToken(t1);
  CHECK(h1.size() == 64);
  CHECK(h1 == HexEncode(Blake2b256(AsBytes(t1))));
  CHECK(ConstantTimeEqual(h1, HashOpaqueToken(t1)));
  CHECK_FALSE(ConstantTimeEqual(h1, HashOpaqueToken(t2)));
  CHECK(h1.find(t1) == std::string::npos);
}

TEST_CASE("crypto keys: public key text form", "[crypto]") {
  auto kp = KeyPair::FromSeed(Seed0to31());
  REQUIRE(kp.ok());
  // Cross-checked with Python's cryptography package (see tests/vectors/envelope_v1.txt).
  const std::string text = "ed25519:A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg";
  CHECK(kp->public_key().ToString() == text);
  auto parsed = ParsePublicKey(text);
  REQUIRE(parsed.ok());
  CHECK(*parsed == kp->public_key());

  KeyPair other = KeyPair::Generate();
  CHECK_FALSE(other.public_key() == kp->public_key());
  auto round = ParsePublicKey(other.public_key().ToString());
  REQUIRE(round.ok());
  CHECK(*round == other.public_key());

  for (const char* bad : {"", "ed25519:", "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg",
                          "ED25519:A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg",
                          "ed25519:A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=",
                          "ed25519:A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbgAA",
                          "ed25519:A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMb",
                          "ed25519: A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg",
                          "x25519:A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"}) {
    INFO(bad);
    auto r = ParsePublicKey(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kBadRequest);
  }
}

TEST_CASE("crypto keys: sign and verify", "[crypto]") {
  KeyPair kp = KeyPair::Generate();
  Bytes msg = B("the message");
  auto sig = kp.Sign(msg);
  CHECK(VerifySignature(kp.public_key(), msg, sig));
  CHECK(kp.Sign(msg) == sig);  // Ed25519 is deterministic
  CHECK_FALSE(VerifySignature(kp.public_key(), B("the messagE"), sig));
  CHECK_FALSE(VerifySignature(KeyPair::Generate().public_key(), msg, sig));
  auto bad = sig;
  bad[10] ^= 1;
  CHECK_FALSE(VerifySignature(kp.public_key(), msg, bad));
  CHECK_FALSE(VerifySignature(kp.public_key(), msg, std::span(sig).first(63)));
  CHECK_FALSE(VerifySignature(kp.public_key(), msg, Bytes{}));
  CHECK_FALSE(KeyPair::FromSeed(Bytes(31)).ok());
  CHECK_FALSE(KeyPair::FromSeed(Bytes(33)).ok());
  // The same seed always gives the same key.
  CHECK(KeyPair::FromSeed(Seed0to31())->public_key() ==
        KeyPair::FromSeed(Seed0to31())->public_key());
}

TEST_CASE("crypto keys: key file save/load round trip with mode 0600", "[crypto]") {
  TempDir dir;
  const std::string path = dir.File("node.key");
  auto kp = KeyPair::FromSeed(Seed0to31());
  REQUIRE(kp.ok());
  Status saved = kp->SaveFile(path);
  REQUIRE(saved.ok());

  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
  CHECK(ReadAll(path) == "chatd-ed25519-seed-v1 " + Base64UrlEncode(Seed0to31()) + "\n");

  auto loaded = KeyPair::LoadFile(path);
  REQUIRE(loaded.ok());
  CHECK(loaded->public_key() == kp->public_key());
  Bytes msg = B("signed by the loaded key");
  CHECK(VerifySignature(kp->public_key(), msg, loaded->Sign(msg)));

  // Refuses to overwrite, and leaves the existing file alone.
  KeyPair other = KeyPair::Generate();
  Status again = other.SaveFile(path);
  REQUIRE_FALSE(again.ok());
  CHECK(again.code() == Code::kConflict);
  CHECK(KeyPair::LoadFile(path)->public_key() == kp->public_key());

  // A fresh random key round-trips too (no trailing newline needed on load).
  const std::string path2 = dir.File("other.key");
  REQUIRE(other.SaveFile(path2).ok());
  CHECK(KeyPair::LoadFile(path2)->public_key() == other.public_key());
  std::string content = ReadAll(path2);
  WriteFile(path2, content.substr(0, content.size() - 1), 0600);
  CHECK(KeyPair::LoadFile(path2)->public_key() == other.public_key());
}

TEST_CASE("crypto keys: key file refusals", "[crypto]") {
  TempDir dir;
  const std::string good = "chatd-ed25519-seed-v1 " + Base64UrlEncode(Seed0to31()) + "\n";

  SECTION("group/other readable file") {
    const std::string path = dir.File("open.key");
    WriteFile(path, good, 0644);
    auto r = KeyPair::LoadFile(path);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kForbidden);
    CHECK_THAT(r.status().message(), Catch::Contains("0644") && Catch::Contains("chmod 600"));
    WriteFile(path, good, 0640);
    CHECK_FALSE(KeyPair::LoadFile(path).ok());
    WriteFile(path, good, 0602);
    CHECK_FALSE(KeyPair::LoadFile(path).ok());
    WriteFile(path, good, 0400);
    CHECK(KeyPair::LoadFile(path).ok());
  }
  SECTION("missing file") {
    auto r = KeyPair::LoadFile(dir.File("missing.key"));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kNotFound);
  }
  SECTION("symlink and directory") {
    const std::string target = dir.File("target.key");
    WriteFile(target, good, 0600);
    const std::string link = dir.File("link.key");
    REQUIRE(::symlink(target.c_str(), link.c_str()) == 0);
    CHECK_FALSE(KeyPair::LoadFile(link).ok());
    CHECK_FALSE(KeyPair::LoadFile(dir.File("")).ok());
    CHECK_FALSE(KeyPair::FromSeed(Seed0to31())->SaveFile(link).ok());
  }
  SECTION("bad contents") {
    const std::string path = dir.File("bad.key");
    const std::string seed = Base64UrlEncode(Seed0to31());
    for (const std::string& bad : std::vector<std::string>{
             "", "\n", "chatd-ed25519-seed-v1 \n", "chatd-ed25519-seed-v2 " + seed + "\n",
             "chatd-ed25519-seed-v1  " + seed + "\n", "chatd-ed25519-seed-v1 " + seed + "\r\n",
             "chatd-ed25519-seed-v1 " + seed + "\n\n", "chatd-ed25519-seed-v1 " + seed + "=\n",
             "chatd-ed25519-seed-v1 " + seed + "AA\n",
             "chatd-ed25519-seed-v1 " + seed.substr(1) + "\n", std::string(1000, 'x')}) {
      INFO(bad);
      WriteFile(path, bad, 0600);
      auto r = KeyPair::LoadFile(path);
      REQUIRE_FALSE(r.ok());
      CHECK(r.status().code() == Code::kCorrupt);
    }
  }
}

}  // namespace
}  // namespace chatd::crypto
