// Unit tests: file names, MIME types, Content-Disposition, signed file URLs, blobs on disk
// and the key derivation they rest on (relay/files.h, crypto/keys.h).
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "crypto/keys.h"
#include "relay/files.h"

using namespace chatd;
using namespace chatd::files;

TEST_CASE("files: file names lose paths, control characters and bad UTF-8, and are bounded", "[relay][files]") {
  CHECK(SanitizeFilename("report.pdf") == "report.pdf");
  CHECK(SanitizeFilename("../../etc/passwd") == "passwd");
  CHECK(SanitizeFilename("C:\\Users\\me\\cv.docx") == "cv.docx");
  CHECK(SanitizeFilename("a\x01\n\x7f b.txt") == "a b.txt");
  CHECK(SanitizeFilename("caf\xc3\xa9.png") == "caf\xc3\xa9.png");
  CHECK(SanitizeFilename("bad\xff\xfe.png") == "bad.png");
  CHECK(SanitizeFilename("..") == "file");
  CHECK(SanitizeFilename("...hidden") == "hidden");
  CHECK(SanitizeFilename("dir/") == "file");
  CHECK(SanitizeFilename("") == "file");
  CHECK(SanitizeFilename("  x  ") == "x");
  // Bounded on a character boundary: 200 two-byte characters are cut to 127 of them.
  std::string long_name;
  for (int i = 0; i < 200; ++i) long_name += "\xc3\xa9";
  std::string cut = SanitizeFilename(long_name);
  CHECK(cut.size() == 254);
  CHECK(cut.size() <= kMaxFilenameBytes);
}

TEST_CASE("files: MIME types are normalised, file types follow them", "[relay][files]") {
  CHECK(NormalizeMime("image/PNG") == "image/png");
  CHECK(NormalizeMime("text/plain; charset=utf-8") == "text/plain");
  CHECK(NormalizeMime("application/vnd.openxmlformats-officedocument.wordprocessingml.document") ==
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document");
  for (const char* bad : {"", "image", "image/", "/png", "a/b/c", "text/html\r\nX-Evil: 1", "te xt/plain"}) {
    INFO(bad);
    CHECK(NormalizeMime(bad) == "application/octet-stream");
  }
  CHECK(NormalizeMime(std::string(100, 'a') + "/" + std::string(100, 'b')) == "application/octet-stream");
  CHECK(FileTypeOf("image/jpeg") == "image");
  CHECK(FileTypeOf("video/mp4") == "video");
  CHECK(FileTypeOf("audio/ogg") == "audio");
  CHECK(FileTypeOf("application/pdf") == "file");
  CHECK(FileTypeOf("imagex/foo") == "file");
}

TEST_CASE("files: Content-Disposition quotes nothing a client can break out of", "[relay][files]") {
  CHECK(ContentDisposition("a.txt") == "attachment; filename=\"a.txt\"; filename*=UTF-8''a.txt");
  std::string d = ContentDisposition("x\";evil=1\\ \xc3\xa9.txt");
  CHECK(d == "attachment; filename=\"x__evil=1_ __.txt\"; filename*=UTF-8''x%22%3Bevil%3D1%5C%20%C3%A9.txt");
  CHECK(d.find('\r') == std::string::npos);
}

TEST_CASE("files: signed URLs verify, and refuse any change or expiry", "[relay][files]") {
  crypto::KeyPair key = crypto::KeyPair::Generate();
  UrlSigner signer(key.DeriveKey("chatd file url v1"));
  const int64_t exp = 1795000000000;
  std::string sig = signer.Sign(42, exp);
  CHECK(sig.size() == 64);
  CHECK(signer.Check(42, exp, sig, exp - 1).ok());
  CHECK(signer.Check(42, exp, sig, exp).ok());
  CHECK(signer.Check(42, exp, sig, exp + 1).code() == Code::kForbidden);      // expired
  CHECK(signer.Check(43, exp, sig, exp - 1).code() == Code::kForbidden);      // another file
  CHECK(signer.Check(42, exp + 1, sig, exp - 1).code() == Code::kForbidden);  // a later expiry
  std::string flipped = sig;
  flipped[0] = flipped[0] == 'a' ? 'b' : 'a';
  CHECK(signer.Check(42, exp, flipped, exp - 1).code() == Code::kForbidden);
  CHECK(signer.Check(42, exp, "", exp - 1).code() == Code::kForbidden);
  CHECK(signer.Path(42, exp) == "/api/v1/files/42/content?exp=1795000000000&sig=" + sig);
  // Another relay's key signs differently.
  UrlSigner other(crypto::KeyPair::Generate().DeriveKey("chatd file url v1"));
  CHECK(other.Sign(42, exp) != sig);
}

TEST_CASE("keys: derived keys are deterministic, per context and not the seed", "[crypto]") {
  const std::vector<uint8_t> seed(32, 7);
  auto a = crypto::KeyPair::FromSeed(seed);
  auto b = crypto::KeyPair::FromSeed(seed);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  crypto::SecretBytes k1 = a->DeriveKey("one"), k1b = b->DeriveKey("one"), k2 = a->DeriveKey("two");
  REQUIRE(k1.size() == 32);
  CHECK(std::equal(k1.span().begin(), k1.span().end(), k1b.span().begin()));
  CHECK_FALSE(std::equal(k1.span().begin(), k1.span().end(), k2.span().begin()));
  CHECK_FALSE(std::equal(k1.span().begin(), k1.span().end(), seed.begin()));
}

TEST_CASE("files: blobs are content-addressed, and an unfinished or oversized write leaves nothing", "[relay][files]") {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("chatd-blobs-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  BlobStore blobs(dir.string());
  REQUIRE(blobs.Init().ok());
  auto count = [&](const fs::path& p) {
    size_t n = 0;
    for (const auto& e : fs::recursive_directory_iterator(p)) n += e.is_regular_file();
    return n;
  };
  const std::string kAbcSha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";  // sha256("abc")
  {
    auto w = blobs.NewWriter(3);
    REQUIRE(w.ok());
    REQUIRE((*w)->Write("ab", 2).ok());
    REQUIRE((*w)->Write("c", 1).ok());
    auto sha = (*w)->Commit();
    REQUIRE(sha.ok());
    CHECK(*sha == kAbcSha);
  }
  CHECK(blobs.Has(kAbcSha));
  CHECK(blobs.BlobPath(kAbcSha) == (dir / "blobs" / "ba" / kAbcSha).string());
  {
    auto w = blobs.NewWriter(10);
    REQUIRE((*w)->Write("abc", 3).ok());
    CHECK(*(*w)->Commit() == kAbcSha);  // the same content: the same blob
  }
  {
    auto w = blobs.NewWriter(3);
    CHECK((*w)->Write("abcd", 4).code() == Code::kTooLarge);
    CHECK((*w)->over_limit());
  }
  {
    auto w = blobs.NewWriter(3);
    REQUIRE((*w)->Write("xy", 2).ok());
  }  // dropped uncommitted
  CHECK(count(dir / "blobs") == 1);
  CHECK(count(dir / "tmp") == 0);
  CHECK_FALSE(blobs.Has("../../etc/passwd"));
  fs::remove_all(dir);
}
