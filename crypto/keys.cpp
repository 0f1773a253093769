#include "crypto/keys.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace chatd::crypto {
namespace {

constexpr std::string_view kPublicKeyPrefix = "ed25519:";
constexpr std::string_view kKeyFileMagic = "chatd-ed25519-seed-v1 ";
// magic + 43 base64url characters + "\n"; anything much larger is not a key file.
constexpr size_t kMaxKeyFileSize = 256;

std::string ErrnoText(int err) { return std::strerror(err); }

// Closes a file descriptor on scope exit.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  // Closes now and reports the error (close can report deferred write errors).
  int Close() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

// Wipes a std::string holding secret text on scope exit.
class StringWiper {
 public:
  explicit StringWiper(std::string* s) : s_(s) {}
  ~StringWiper() {
    if (!s_->empty()) sodium_memzero(s_->data(), s_->size());
  }
  StringWiper(const StringWiper&) = delete;
  StringWiper& operator=(const StringWiper&) = delete;

 private:
  std::string* s_;
};

Status WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError(ErrnoText(errno));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

// Best effort: makes the new directory entry durable.
void SyncParentDir(const std::string& path) {
  std::string dir = ".";
  if (auto slash = path.rfind('/'); slash != std::string::npos) {
    dir = slash == 0 ? "/" : path.substr(0, slash);
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return;
  (void)::fsync(dfd);
  ::close(dfd);
}

}  // namespace

std::string PublicKey::ToString() const {
  return std::string(kPublicKeyPrefix) + Base64UrlEncode(bytes);
}

Result<PublicKey> ParsePublicKey(std::string_view text) {
  if (text.substr(0, kPublicKeyPrefix.size()) != kPublicKeyPrefix) {
    return BadRequest("public key must look like ed25519:<base64url of 32 bytes>");
  }
  auto raw = Base64UrlDecode(text.substr(kPublicKeyPrefix.size()));
  if (!raw.ok()) return BadRequest("public key: " + raw.status().message());
  if (raw->size() != 32) return BadRequest("public key: expected 32 bytes");
  PublicKey pk;
  std::memcpy(pk.bytes.data(), raw->data(), 32);
  return pk;
}

KeyPair KeyPair::Generate() {
  Init();
  KeyPair kp;
  kp.secret_ = SecretBytes(crypto_sign_SECRETKEYBYTES);
  crypto_sign_keypair(kp.public_key_.bytes.data(), kp.secret_.data());
  return kp;
}

Result<KeyPair> KeyPair::FromSeed(std::span<const uint8_t> seed32) {
  Init();
  if (seed32.size() != crypto_sign_SEEDBYTES) {
    return BadRequest("Ed25519 seed must be 32 bytes");
  }
  KeyPair kp;
  kp.secret_ = SecretBytes(crypto_sign_SECRETKEYBYTES);
  crypto_sign_seed_keypair(kp.public_key_.bytes.data(), kp.secret_.data(), seed32.data());
  return kp;
}

Result<KeyPair> KeyPair::LoadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) return NotFound("key file " + path + " does not exist");
    if (err == ELOOP) return Forbidden("key file " + path + " is a symbolic link; refusing it");
    return IoError("cannot open key file " + path + ": " + ErrnoText(err));
  }
  FdCloser closer(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return IoError("cannot stat key file " + path + ": " + ErrnoText(errno));
  if (!S_ISREG(st.st_mode)) return Forbidden("key file " + path + " is not a regular file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Forbidden("key file " + path + " has mode " + mode +
                     ", which lets group/other access the secret key; run: chmod 600 " + path);
  }
  if (st.st_size > static_cast<off_t>(kMaxKeyFileSize)) {
    return Corrupt("key file " + path + " is too large to be a chatd key file");
  }

  std::string text;
  StringWiper wipe_text(&text);
  text.resize(kMaxKeyFileSize + 1);
  size_t used = 0;
  while (used < text.size()) {
    ssize_t n = ::read(fd, text.data() + used, text.size() - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("cannot read key file " + path + ": " + ErrnoText(errno));
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  std::string_view content(text.data(), used);
  if (!content.empty() && content.back() == '\n') content.remove_suffix(1);
  if (content.substr(0, kKeyFileMagic.size()) != kKeyFileMagic) {
    return Corrupt("key file " + path + " does not start with \"chatd-ed25519-seed-v1 \"");
  }
  auto seed = Base64UrlDecode(content.substr(kKeyFileMagic.size()));
  if (!seed.ok() || seed->size() != crypto_sign_SEEDBYTES) {
    if (seed.ok()) sodium_memzero(seed->data(), seed->size());
    return Corrupt("key file " + path + ": the seed is not base64url of 32 bytes");
  }
  auto kp = FromSeed(*seed);
  sodium_memzero(seed->data(), seed->size());
  return kp;
}

Status KeyPair::SaveFile(const std::string& path) const {
  if (secret_.size() != crypto_sign_SECRETKEYBYTES) return Internal("empty key pair");
  std::string text(kKeyFileMagic);
  StringWiper wipe_text(&text);
  text += Base64UrlEncode(secret_.span().first(crypto_sign_SEEDBYTES));
  text += '\n';

  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    int err = errno;
    if (err == EEXIST) {
      return Conflict("key file " + path + " already exists; refusing to overwrite it");
    }
    return IoError("cannot create key file " + path + ": " + ErrnoText(err));
  }
  FdCloser closer(fd);
  Status st = WriteAll(fd, text);
  // The umask can only remove bits from 0600, but make the mode explicit anyway.
  if (st.ok() && ::fchmod(fd, 0600) != 0) st = IoError(ErrnoText(errno));
  if (st.ok() && ::fsync(fd) != 0) st = IoError(ErrnoText(errno));
  if (st.ok() && closer.Close() != 0) st = IoError(ErrnoText(errno));
  if (!st.ok()) {
    ::unlink(path.c_str());
    return IoError("cannot write key file " + path + ": " + st.message());
  }
  SyncParentDir(path);
  return Status::Ok();
}

std::array<uint8_t, 64> KeyPair::Sign(std::span<const uint8_t> msg) const {
  std::array<uint8_t, 64> sig{};
  // A moved-from key pair signs nothing: an all-zero signature never verifies.
  if (secret_.size() != crypto_sign_SECRETKEYBYTES) return sig;
  Init();
  crypto_sign_detached(sig.data(), nullptr, msg.data(), msg.size(), secret_.data());
  return sig;
}

SecretBytes KeyPair::DeriveKey(std::string_view context) const {
  if (secret_.size() != crypto_sign_SECRETKEYBYTES) return {};
  Init();
  SecretBytes out(crypto_generichash_BYTES);
  crypto_generichash(out.data(), out.size(), reinterpret_cast<const uint8_t*>(context.data()), context.size(),
                     secret_.data(), crypto_sign_SEEDBYTES);
  return out;
}

bool VerifySignature(const PublicKey& pk, std::span<const uint8_t> msg,
                     std::span<const uint8_t> sig64) {
  if (sig64.size() != crypto_sign_BYTES) return false;
  Init();
  return crypto_sign_verify_detached(sig64.data(), msg.data(), msg.size(), pk.bytes.data()) == 0;
}

}  // namespace chatd::crypto
