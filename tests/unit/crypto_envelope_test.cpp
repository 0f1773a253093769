// Unit tests for crypto/envelope.h: canonical bytes against the committed vectors,
// seal/verify, tampering, erasure, and the wire encoding on hostile input.
#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "crypto/bytes.h"
#include "crypto/envelope.h"
#include "crypto/keys.h"

namespace chatd::crypto {
namespace {

using Vector = std::map<std::string, std::string>;

// Parses tests/vectors/envelope_v1.txt: "[name]" sections of "key = value" lines.
std::map<std::string, Vector> LoadVectors() {
  std::ifstream in(std::string(CHATD_SOURCE_DIR) + "/tests/vectors/envelope_v1.txt");
  REQUIRE(in.good());
  std::map<std::string, Vector> out;
  std::string line, section;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = line.substr(1, line.size() - 2);
      continue;
    }
    auto eq = line.find('=');
    REQUIRE(eq != std::string::npos);
    std::string key = line.substr(0, eq);
    while (!key.empty() && key.back() == ' ') key.pop_back();
    std::string value = line.substr(eq + 1);
    if (!value.empty() && value.front() == ' ') value.erase(0, 1);
    out[section][key] = value;
  }
  return out;
}

std::string Unhex(const std::string& hex) {
  auto b = HexDecode(hex);
  REQUIRE(b.ok());
  return std::string(AsText(*b));
}

template <size_t N>
std::array<uint8_t, N> UnhexArray(const std::string& hex) {
  auto b = HexDecode(hex);
  REQUIRE(b.ok());
  REQUIRE(b->size() == N);
  std::array<uint8_t, N> a{};
  std::copy(b->begin(), b->end(), a.begin());
  return a;
}

// The envelope a vector describes (header fields, body, salt; no hash or sig).
Envelope FromVector(const Vector& v) {
  Envelope env;
  env.origin = v.at("origin");
  env.seq = std::stoull(v.at("seq"));
  env.id = std::stoull(v.at("id"));
  std::string deps = v.at("deps");
  size_t pos = 0;
  while (pos < deps.size()) {
    size_t comma = deps.find(',', pos);
    if (comma == std::string::npos) comma = deps.size();
    std::string item = deps.substr(pos, comma - pos);
    size_t colon = item.find(':');
    REQUIRE(colon != std::string::npos);
    env.deps.emplace_back(item.substr(0, colon), std::stoull(item.substr(colon + 1)));
    pos = comma + 1;
  }
  env.chat_id = std::stoull(v.at("chat_id"));
  env.author = std::stoull(v.at("author"));
  env.device = v.at("device");
  REQUIRE(KindFromInt(static_cast<uint16_t>(std::stoul(v.at("kind"))), &env.kind));
  env.created_at = std::stoll(v.at("created_at"));
  env.body = v.at("body");
  env.salt = Unhex(v.at("salt"));
  return env;
}

// A sealed envelope with every field populated.
Envelope SampleEnvelope(const KeyPair& key) {
  Envelope env;
  env.origin = "eu1";
  env.seq = 7;
  env.id = 123456789012345;
  env.deps = {{"ap1", 3}, {"eu1", 6}};
  env.chat_id = 99;
  env.author = 42;
  env.device = "phone-1";
  env.kind = Kind::kMsgPost;
  env.created_at = 1767225600000;
  env.body = R"({"text":"hi"})";
  REQUIRE(Seal(env, key).ok());
  return env;
}

TEST_CASE("crypto envelope: canonical bytes match the committed v1 vectors", "[crypto]") {
  auto vectors = LoadVectors();
  REQUIRE(vectors.size() == 3);
  for (const auto& [name, v] : vectors) {
    INFO("vector " << name);
    auto key = KeyPair::FromSeed(*HexDecode(v.at("seed")));
    REQUIRE(key.ok());
    CHECK(key->public_key().ToString() == v.at("public_key"));

    Envelope env = FromVector(v);
    env.body_hash = UnhexArray<32>(v.at("body_hash"));
    if (!env.body.empty() || !env.salt.empty()) {
      // The body hash definition: BLAKE2b-256(salt ‖ body).
      CHECK(Blake2b256(env.salt, env.body) == env.body_hash);
    }
    CHECK(HexEncode(AsBytes(CanonicalHeader(env))) == v.at("canonical_header"));
    CHECK(HexEncode(HeaderHash(env)) == v.at("header_hash"));
    env.sig = key->Sign(AsBytes(CanonicalHeader(env)));
    CHECK(HexEncode(env.sig) == v.at("sig"));
    CHECK(HexEncode(AsBytes(EncodeEnvelope(env))) == v.at("wire"));
    CHECK(Verify(env, key->public_key()).ok());
    CHECK(env.erased() == (name == "msg_post_erased"));

    auto decoded = DecodeEnvelope(Unhex(v.at("wire")));
    REQUIRE(decoded.ok());
    CHECK(EncodeEnvelope(*decoded) == EncodeEnvelope(env));
    CHECK(Verify(*decoded, key->public_key()).ok());
  }
  // Erasing the live vector yields exactly the erased vector.
  Envelope live = FromVector(vectors.at("msg_post"));
  live.body_hash = UnhexArray<32>(vectors.at("msg_post").at("body_hash"));
  live.sig = UnhexArray<64>(vectors.at("msg_post").at("sig"));
  Erase(live);
  CHECK(HexEncode(AsBytes(EncodeEnvelope(live))) == vectors.at("msg_post_erased").at("wire"));
}

TEST_CASE("crypto envelope: seal sets salt, hash and signature", "[crypto]") {
  KeyPair key = KeyPair::Generate();
  Envelope a = SampleEnvelope(key);
  Envelope b = SampleEnvelope(key);
  CHECK(a.salt.size() == kSaltLen);
  CHECK(a.salt != b.salt);            // fresh salt per seal
  CHECK(a.body_hash != b.body_hash);  // so equal bodies do not hash alike
  CHECK(Blake2b256(a.salt, a.body) == a.body_hash);
  CHECK_FALSE(a.erased());
  CHECK(Verify(a, key.public_key()).ok());
  CHECK(HeaderHash(a) == Blake2b256(AsBytes(CanonicalHeader(a))));
  CHECK(HeaderHash(a) != HeaderHash(b));
  // Salts are cut from per-thread blocks of 256: across several blocks none repeats.
  std::set<std::string> salts;
  for (int i = 0; i < 600; ++i) salts.insert(SampleEnvelope(key).salt);
  CHECK(salts.size() == 600);

  // Seal validates bounds first and changes nothing on error.
  Envelope bad = a;
  bad.origin = "EU1";
  Status st = Seal(bad, key);
  REQUIRE_FALSE(st.ok());
  CHECK(st.code() == Code::kCorrupt);
  CHECK(bad.salt == a.salt);
  CHECK(bad.sig == a.sig);
}

TEST_CASE("crypto envelope: tampering is detected", "[crypto]") {
  KeyPair key = KeyPair::Generate();
  const Envelope good = SampleEnvelope(key);
  const PublicKey& pk = key.public_key();
  REQUIRE(Verify(good, pk).ok());

  auto expect_corrupt = [&](const Envelope& env, const char* what) {
    INFO(what);
    Status st = Verify(env, pk);
    REQUIRE_FALSE(st.ok());
    CHECK(st.code() == Code::kCorrupt);
    return st.message();
  };

  Envelope e = good;
  e.body = R"({"text":"ho"})";
  CHECK_THAT(expect_corrupt(e, "body"), Catch::Contains("body_hash"));
  e = good;
  e.salt[0] ^= 1;
  CHECK_THAT(expect_corrupt(e, "salt"), Catch::Contains("body_hash"));
  e = good;
  e.salt.clear();
  expect_corrupt(e, "salt dropped, body kept");

  // Every header field is covered by the signature.
  std::vector<std::pair<const char*, void (*)(Envelope&)>> edits = {
      {"origin", [](Envelope& x) { x.origin = "eu2"; }},
      {"seq", [](Envelope& x) { x.seq++; }},
      {"id", [](Envelope& x) { x.id++; }},
      {"dep seq", [](Envelope& x) { x.deps[0].second++; }},
      {"dep added", [](Envelope& x) { x.deps.emplace_back("us1", 1); }},
      {"dep removed", [](Envelope& x) { x.deps.pop_back(); }},
      {"chat_id", [](Envelope& x) { x.chat_id++; }},
      {"author", [](Envelope& x) { x.author++; }},
      {"device", [](Envelope& x) { x.device = "phone-2"; }},
      {"kind", [](Envelope& x) { x.kind = Kind::kMsgEdit; }},
      {"created_at", [](Envelope& x) { x.created_at++; }},
      {"sig", [](Envelope& x) { x.sig[63] ^= 0x40; }},
  };
  for (auto& [what, edit] : edits) {
    e = good;
    edit(e);
    expect_corrupt(e, what);
  }
  e = good;
  e.body_hash[5] ^= 1;
  expect_corrupt(e, "body_hash");
  // Same hash change on an erased envelope: no body to check, but the signature fails.
  Erase(e);
  CHECK_THAT(expect_corrupt(e, "erased body_hash"), Catch::Contains("signature"));

  // Wrong key.
  Status st = Verify(good, KeyPair::Generate().public_key());
  REQUIRE_FALSE(st.ok());
  CHECK(st.code() == Code::kCorrupt);
  CHECK_THAT(st.message(), Catch::Contains("signature"));
}

TEST_CASE("crypto envelope: erased envelopes still verify", "[crypto]") {
  KeyPair key = KeyPair::Generate();
  Envelope env = SampleEnvelope(key);
  auto header_hash = HeaderHash(env);
  Erase(env);
  CHECK(env.erased());
  CHECK(env.body.empty());
  CHECK(env.salt.empty());
  CHECK(Verify(env, key.public_key()).ok());
  CHECK(HeaderHash(env) == header_hash);  // erasure is not equivocation
  auto decoded = DecodeEnvelope(EncodeEnvelope(env));
  REQUIRE(decoded.ok());
  CHECK(decoded->erased());
  CHECK(Verify(*decoded, key.public_key()).ok());
  // An unsealed envelope with no body is not "erased" and does not verify.
  Envelope blank = env;
  blank.body_hash = {};
  CHECK_FALSE(blank.erased());
  CHECK_FALSE(Verify(blank, key.public_key()).ok());
}

TEST_CASE("crypto envelope: field bounds", "[crypto]") {
  KeyPair key = KeyPair::Generate();
  const Envelope good = SampleEnvelope(key);
  CHECK(IsValidRelayName("eu1"));
  CHECK(IsValidRelayName(std::string(32, 'a')));
  for (const char* bad : {"", "EU1", "eu_1", "eu 1", "eu.1", "é"})
    CHECK_FALSE(IsValidRelayName(bad));
  CHECK_FALSE(IsValidRelayName(std::string(33, 'a')));

  std::vector<std::pair<const char*, void (*)(Envelope&)>> edits = {
      {"long origin", [](Envelope& x) { x.origin = std::string(33, 'a'); }},
      {"seq 0", [](Envelope& x) { x.seq = 0; }},
      {"64-bit id", [](Envelope& x) { x.id = kMaxId + 1; }},
      {"unsorted deps", [](Envelope& x) { std::swap(x.deps[0], x.deps[1]); }},
      {"duplicate deps", [](Envelope& x) { x.deps[1].first = x.deps[0].first; }},
      {"bad dep name", [](Envelope& x) { x.deps[0].first = "A"; }},
      {"too many deps",
       [](Envelope& x) {
         x.deps.clear();
         for (int i = 0; i < 1025; ++i) x.deps.emplace_back("r" + std::to_string(10000 + i), 1);
       }},
      {"long device", [](Envelope& x) { x.device = std::string(65, 'd'); }},
      {"unknown kind", [](Envelope& x) { x.kind = static_cast<Kind>(999); }},
      {"huge body", [](Envelope& x) { x.body = std::string(kMaxBodyLen + 1, 'b'); }},
      {"short salt", [](Envelope& x) { x.salt.resize(15); }},
  };
  for (auto& [what, edit] : edits) {
    INFO(what);
    Envelope e = good;
    edit(e);
    CHECK(CheckBounds(e).code() == Code::kCorrupt);
    CHECK(Verify(e, key.public_key()).code() == Code::kCorrupt);
    CHECK_FALSE(Seal(e, key).ok());
    CHECK_FALSE(DecodeEnvelope(EncodeEnvelope(e)).ok());
  }
  // Limits themselves are fine.
  Envelope e = good;
  e.origin = std::string(32, 'o');
  e.device = std::string(64, 'd');
  e.id = kMaxId;
  e.body = std::string(kMaxBodyLen, 'b');
  e.deps.clear();
  for (int i = 0; i < 1024; ++i) e.deps.emplace_back("r" + std::to_string(10000 + i), 1);
  REQUIRE(Seal(e, key).ok());
  auto decoded = DecodeEnvelope(EncodeEnvelope(e));
  REQUIRE(decoded.ok());
  CHECK(Verify(*decoded, key.public_key()).ok());
  CHECK(std::string(KindName(Kind::kMsgPost)) == "msg_post");
  CHECK(std::string(KindName(Kind::kFileVersion)) == "file_version");
  CHECK(std::string(KindName(static_cast<Kind>(7))) == "unknown");
  Kind k;
  CHECK(KindFromInt(35, &k));
  CHECK(k == Kind::kPrivacy);
  CHECK_FALSE(KindFromInt(0, &k));
  CHECK_FALSE(KindFromInt(36, &k));
}

TEST_CASE("crypto envelope: encode/decode round trip and hostile input", "[crypto]") {
  KeyPair key = KeyPair::Generate();
  const Envelope env = SampleEnvelope(key);
  const std::string wire = EncodeEnvelope(env);
  auto decoded = DecodeEnvelope(wire);
  REQUIRE(decoded.ok());
  CHECK(decoded->origin == env.origin);
  CHECK(decoded->seq == env.seq);
  CHECK(decoded->id == env.id);
  CHECK(decoded->deps == env.deps);
  CHECK(decoded->chat_id == env.chat_id);
  CHECK(decoded->author == env.author);
  CHECK(decoded->device == env.device);
  CHECK(decoded->kind == env.kind);
  CHECK(decoded->created_at == env.created_at);
  CHECK(decoded->body_hash == env.body_hash);
  CHECK(decoded->sig == env.sig);
  CHECK(decoded->body == env.body);
  CHECK(decoded->salt == env.salt);
  CHECK(Verify(*decoded, key.public_key()).ok());

  // Every strict prefix is rejected as corrupt; so is any trailing byte.
  for (size_t n = 0; n < wire.size(); ++n) {
    auto r = DecodeEnvelope(std::string_view(wire).substr(0, n));
    REQUIRE_FALSE(r.ok());
    REQUIRE(r.status().code() == Code::kCorrupt);
  }
  CHECK_FALSE(DecodeEnvelope(wire + '\0').ok());

  // Random bytes, and random bytes behind a valid magic, never crash or decode.
  std::mt19937_64 rng(12345);
  for (int i = 0; i < 2000; ++i) {
    std::string junk(rng() % 512, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    if (i % 2 == 0) junk = "chatd-env-v1" + junk;
    CHECK_FALSE(DecodeEnvelope(junk).ok());
  }
  // Single-byte corruptions either fail to decode or fail to verify.
  for (size_t pos = 0; pos < wire.size(); ++pos) {
    std::string bent = wire;
    bent[pos] = static_cast<char>(bent[pos] ^ (1 << (pos % 8)));
    auto r = DecodeEnvelope(bent);
    if (r.ok()) REQUIRE_FALSE(Verify(*r, key.public_key()).ok());
  }
  // A huge declared dep count or body length with little data is refused up front.
  std::string header = CanonicalHeader(env);
  std::string lying = wire;
  size_t ndeps_at = 12 + 1 + env.origin.size() + 8 + 8;
  lying[ndeps_at] = 0x04;  // 0x0402 deps > 1024
  CHECK_FALSE(DecodeEnvelope(lying).ok());
  lying = wire;
  lying[header.size() + 64] = 0x7f;  // body length ~2 GiB
  CHECK_FALSE(DecodeEnvelope(lying).ok());
}

TEST_CASE("crypto envelope: one key pair shared by threads", "[crypto]") {
  // The contract: const KeyPair methods and the free functions are safe concurrently.
  KeyPair key = KeyPair::Generate();
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&key, &failures, t] {
      for (int i = 0; i < 200; ++i) {
        Envelope env;
        env.origin = "eu1";
        env.seq = static_cast<uint64_t>(t * 1000 + i + 1);
        env.body = "{\"n\":" + std::to_string(i) + "}";
        if (!Seal(env, key).ok()) ++failures[t];
        auto decoded = DecodeEnvelope(EncodeEnvelope(env));
        if (!decoded.ok() || !Verify(*decoded, key.public_key()).ok()) ++failures[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failures == std::vector<int>(4, 0));
}

}  // namespace
}  // namespace chatd::crypto
