// Unit tests for crypto/password.h (argon2id). Cheap parameters everywhere except one
// test at the real (OWASP minimum) defaults.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "crypto/password.h"

namespace chatd::crypto {
namespace {

// libsodium's argon2id minimum: 1 pass, 8 KiB.
constexpr PasswordParams kCheap{1, 8 * 1024};

std::string MustHash(std::string_view password, PasswordParams params = kCheap) {
  auto h = HashPassword(password, params);
  REQUIRE(h.ok());
  return *h;
}

TEST_CASE("crypto password: hash and verify", "[crypto]") {
  const std::string stored = MustHash("correct horse battery staple");
  CHECK(stored.rfind("$argon2id$v=19$m=8,t=1,p=1$", 0) == 0);
  CHECK(VerifyPassword(stored, "correct horse battery staple"));
  CHECK_FALSE(VerifyPassword(stored, "correct horse battery stapl"));
  CHECK_FALSE(VerifyPassword(stored, "Correct horse battery staple"));
  CHECK_FALSE(VerifyPassword(stored, ""));
  // A fresh salt each time: same password, different stored strings, both verify.
  const std::string again = MustHash("correct horse battery staple");
  CHECK(again != stored);
  CHECK(VerifyPassword(again, "correct horse battery staple"));
  // The password never appears in the stored form.
  CHECK(stored.find("horse") == std::string::npos);
}

TEST_CASE("crypto password: length limits", "[crypto]") {
  for (size_t len : {0, 1, 7, 1025, 4096}) {
    INFO(len);
    auto r = HashPassword(std::string(len, 'p'), kCheap);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kBadRequest);
  }
  CHECK(VerifyPassword(MustHash(std::string(8, 'p')), std::string(8, 'p')));
  const std::string longest(1024, 'q');
  CHECK(VerifyPassword(MustHash(longest), longest));
  CHECK_FALSE(VerifyPassword(MustHash(longest), longest + "q"));
  // Embedded NULs are ordinary bytes.
  const std::string with_nul("pass\0word", 9);
  const std::string stored = MustHash(with_nul);
  CHECK(VerifyPassword(stored, with_nul));
  CHECK_FALSE(VerifyPassword(stored, "pass"));
}

TEST_CASE("crypto password: malformed stored hashes never verify", "[crypto]") {
  const std::string stored = MustHash("password123");
  // Damaged algorithm or parameters: never verifies, always needs a rehash.
  for (const std::string& bad : std::vector<std::string>{
           "", "password123", stored.substr(0, 20), "$argon2i$" + stored.substr(10),
           "$2b$10$abcdefghijklmnop", stored + std::string("\0", 1), std::string(500, '$'),
           std::string(stored).replace(stored.find("m=8"), 3, "m=7")}) {
    INFO(bad);
    CHECK_FALSE(VerifyPassword(bad, "password123"));
    CHECK(PasswordNeedsRehash(bad, kCheap));
  }
  // Damaged hash value with intact parameters: never verifies. (PasswordNeedsRehash
  // reads only the algorithm and cost, so it has no opinion here.)
  std::string flipped = stored;
  flipped[flipped.size() - 5] = flipped[flipped.size() - 5] == 'A' ? 'B' : 'A';
  for (const std::string& bad :
       std::vector<std::string>{stored.substr(0, stored.size() - 1), stored + "x", flipped}) {
    INFO(bad);
    CHECK_FALSE(VerifyPassword(bad, "password123"));
  }
  CHECK(HashPassword("password123", PasswordParams{0, 8 * 1024}).status().code() ==
        Code::kInternal);
  CHECK(HashPassword("password123", PasswordParams{1, 1024}).status().code() == Code::kInternal);
}

TEST_CASE("crypto password: rehash when params change", "[crypto]") {
  const std::string stored = MustHash("password123");
  CHECK_FALSE(PasswordNeedsRehash(stored, kCheap));
  CHECK(PasswordNeedsRehash(stored, PasswordParams{2, 8 * 1024}));
  CHECK(PasswordNeedsRehash(stored, PasswordParams{1, 16 * 1024}));
  CHECK(PasswordNeedsRehash(stored, PasswordParams{}));
}

TEST_CASE("crypto password: real OWASP parameters", "[crypto]") {
  const PasswordParams real;  // 19 MiB, t=2
  const std::string stored = MustHash("a long enough passphrase", real);
  CHECK(stored.rfind("$argon2id$v=19$m=19456,t=2", 0) == 0);
  CHECK(stored.rfind("$argon2id$v=19$m=19456,t=2,p=1$", 0) == 0);
  CHECK(VerifyPassword(stored, "a long enough passphrase"));
  CHECK_FALSE(VerifyPassword(stored, "a long enough passphrasE"));
  CHECK_FALSE(PasswordNeedsRehash(stored, real));
  CHECK(PasswordNeedsRehash(stored, kCheap));
}

}  // namespace
}  // namespace chatd::crypto
