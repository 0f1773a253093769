// File blobs, signed URLs and file name / MIME checks (relay/files.h).
#include "relay/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/utf8.h"

namespace chatd::files {

namespace {

bool IsTokenChar(char c) {
  if (c >= 'a' && c <= 'z') return true;
  if (c >= '0' && c <= '9') return true;
  return std::strchr("!#$&^_.+-", c) != nullptr;
}

Status Errno(const std::string& what) { return IoError(what + ": " + std::strerror(errno)); }

Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open " + dir);
  int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? Status::Ok() : Errno("cannot fsync " + dir);
}

// Creates dir if it is missing; a new directory's entry is made durable in its parent, so
// that a blob renamed into it (and fsynced there) survives a crash with its path.
Status MakeDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) == 0) {
    size_t slash = dir.rfind('/');
    return slash == std::string::npos ? FsyncDir(".") : FsyncDir(slash == 0 ? "/" : dir.substr(0, slash));
  }
  if (errno == EEXIST) return Status::Ok();
  return Errno("cannot create " + dir);
}

std::string Hex(const uint8_t* p, size_t n) { return crypto::HexEncode({p, n}); }

}  // namespace

std::string SanitizeFilename(std::string_view name) {
  size_t slash = name.find_last_of("/\\");
  if (slash != std::string_view::npos) name.remove_prefix(slash + 1);
  std::string out;
  while (!name.empty()) {
    size_t len = Utf8Length(name);
    if (len == 0) {  // an ill-formed byte: dropped
      name.remove_prefix(1);
      continue;
    }
    unsigned char c = static_cast<unsigned char>(name[0]);
    bool control = len == 1 && (c < 0x20 || c == 0x7f);
    if (!control) {
      if (out.size() + len > kMaxFilenameBytes) break;
      out.append(name.substr(0, len));
    }
    name.remove_prefix(len);
  }
  size_t start = out.find_first_not_of(". ");
  out.erase(0, start == std::string::npos ? out.size() : start);
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out.empty() ? "file" : out;
}

std::string NormalizeMime(std::string_view mime) {
  const std::string kDefault = "application/octet-stream";
  size_t semi = mime.find(';');
  if (semi != std::string_view::npos) mime = mime.substr(0, semi);
  while (!mime.empty() && (mime.back() == ' ' || mime.back() == '\t')) mime.remove_suffix(1);
  while (!mime.empty() && (mime.front() == ' ' || mime.front() == '\t')) mime.remove_prefix(1);
  if (mime.empty() || mime.size() > kMaxMimeBytes) return kDefault;
  std::string out;
  int slashes = 0;
  for (char c : mime) {
    char l = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if (l == '/') {
      ++slashes;
    } else if (!IsTokenChar(l)) {
      return kDefault;
    }
    out.push_back(l);
  }
  size_t slash = out.find('/');
  if (slashes != 1 || slash == 0 || slash + 1 == out.size()) return kDefault;
  return out;
}

std::string FileTypeOf(std::string_view mime) {
  for (const char* t : {"image", "video", "audio"}) {
    size_t n = std::strlen(t);
    if (mime.size() > n && mime.compare(0, n, t) == 0 && mime[n] == '/') return t;
  }
  return "file";
}

std::string ContentDisposition(std::string_view filename) {
  std::string ascii, encoded;
  for (char ch : filename) {
    unsigned char c = static_cast<unsigned char>(ch);
    bool plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '%' && c != ';';
    ascii.push_back(plain ? ch : '_');
    if (std::isalnum(c) || std::strchr("!#$&+-.^_`|~", ch)) {
      encoded.push_back(ch);
    } else {
      static const char* kHex = "0123456789ABCDEF";
      encoded += '%';
      encoded += kHex[c >> 4];
      encoded += kHex[c & 15];
    }
  }
  return "attachment; filename=\"" + ascii + "\"; filename*=UTF-8''" + encoded;
}

bool IsSha256Hex(std::string_view hex) {
  if (hex.size() != 64) return false;
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// ---- UrlSigner -----------------------------------------------------------------------

UrlSigner::UrlSigner(crypto::SecretBytes key) : key_(std::move(key)) {}

std::string UrlSigner::Sign(uint64_t file_id, int64_t exp_ms) const {
  std::string msg = "file:" + std::to_string(file_id) + ":" + std::to_string(exp_ms);
  uint8_t mac[crypto_auth_BYTES];
  uint8_t key[crypto_auth_KEYBYTES] = {};
  std::memcpy(key, key_.data(), std::min(key_.size(), sizeof key));
  crypto_auth(mac, reinterpret_cast<const uint8_t*>(msg.data()), msg.size(), key);
  sodium_memzero(key, sizeof key);
  return Hex(mac, sizeof mac);
}

std::string UrlSigner::Path(uint64_t file_id, int64_t exp_ms) const {
  return "/api/v1/files/" + std::to_string(file_id) + "/content?exp=" + std::to_string(exp_ms) +
         "&sig=" + Sign(file_id, exp_ms);
}

Status UrlSigner::Check(uint64_t file_id, int64_t exp_ms, std::string_view sig_hex, int64_t now_ms) const {
  if (!crypto::ConstantTimeEqual(Sign(file_id, exp_ms), sig_hex)) {
    return Forbidden("the file URL's signature is not valid; ask GET /files/{id} for a fresh one");
  }
  if (now_ms > exp_ms) return Forbidden("the file URL has expired; ask GET /files/{id} for a fresh one");
  return Status::Ok();
}

// ---- BlobWriter ----------------------------------------------------------------------

BlobWriter::BlobWriter(const BlobStore* store, int fd, std::string tmp_path, uint64_t max_bytes)
    : store_(store), fd_(fd), tmp_path_(std::move(tmp_path)), max_bytes_(max_bytes) {
  crypto_hash_sha256_init(&sha_);
}

BlobWriter::~BlobWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_path_.c_str());
}

Status BlobWriter::Write(const char* data, size_t n) {
  if (over_ || n > max_bytes_ - size_) {
    over_ = true;
    return TooLarge("the file is larger than " + std::to_string(max_bytes_) + " bytes");
  }
  crypto_hash_sha256_update(&sha_, reinterpret_cast<const uint8_t*>(data), n);
  size_ += n;
  while (n > 0) {
    ssize_t w = ::write(fd_, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return Errno("cannot write a temp file");
    data += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

Status BlobWriter::CommitTo(const std::string& path) {
  if (::fsync(fd_) != 0) return Errno("cannot fsync a temp file");
  ::close(fd_);
  fd_ = -1;
  if (::rename(tmp_path_.c_str(), path.c_str()) != 0) return Errno("cannot rename a temp file");
  committed_ = true;
  return FsyncDir(path.substr(0, path.rfind('/')));
}

Result<std::string> BlobWriter::Commit(std::string_view expect) {
  uint8_t digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&sha_, digest);
  std::string sha = Hex(digest, sizeof digest);
  if (!expect.empty() && sha != expect)
    return Corrupt("the content's sha256 is " + sha + ", not " + std::string(expect));
  std::string path = store_->BlobPath(sha);
  if (Status s = MakeDir(path.substr(0, path.rfind('/'))); !s.ok()) return s;
  {
    // The same content is a blob already: the temp goes, and the blob's mtime says it was
    // just used, so that the files janitor leaves it alone while its metadata is written.
    std::lock_guard<std::mutex> lock(store_->reuse_mu_);
    if (store_->Has(sha) && ::utimensat(AT_FDCWD, path.c_str(), nullptr, 0) == 0) return sha;
  }
  Status s = CommitTo(path);
  if (!s.ok()) return s;
  return sha;
}

// ---- BlobStore -----------------------------------------------------------------------

BlobStore::BlobStore(std::string data_dir)
    : blobs_dir_(data_dir + "/blobs"), tmp_dir_(data_dir + "/tmp"), uploads_dir_(data_dir + "/uploads") {}

Status BlobStore::Init() {
  for (const std::string* d : {&blobs_dir_, &tmp_dir_, &uploads_dir_}) {
    if (Status s = MakeDir(*d); !s.ok()) return s;
  }
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(tmp_dir_, ec)) std::filesystem::remove(e.path(), ec);
  return Status::Ok();
}

std::string BlobStore::BlobPath(std::string_view sha_hex) const {
  return blobs_dir_ + "/" + std::string(sha_hex.substr(0, 2)) + "/" + std::string(sha_hex);
}

bool BlobStore::Has(std::string_view sha_hex) const {
  struct stat st;
  return IsSha256Hex(sha_hex) && ::stat(BlobPath(sha_hex).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

Result<std::unique_ptr<BlobWriter>> BlobStore::NewWriter(uint64_t max_bytes) const {
  std::string tmpl = tmp_dir_ + "/upload-XXXXXX";
  int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd < 0) return Errno("cannot create a temp file in " + tmp_dir_);
  return std::unique_ptr<BlobWriter>(new BlobWriter(this, fd, tmpl, max_bytes));
}

std::string BlobStore::UploadDir(uint64_t upload_id) const { return uploads_dir_ + "/" + std::to_string(upload_id); }

std::string BlobStore::ChunkPath(uint64_t upload_id, int n) const {
  return UploadDir(upload_id) + "/" + std::to_string(n);
}

Status BlobStore::MakeUploadDir(uint64_t upload_id) const { return MakeDir(UploadDir(upload_id)); }

void BlobStore::RemoveUpload(uint64_t upload_id) const {
  std::error_code ec;
  std::filesystem::remove_all(UploadDir(upload_id), ec);
}

std::vector<uint64_t> BlobStore::UploadDirs() const {
  std::vector<uint64_t> ids;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(uploads_dir_, ec)) {
    std::string name = e.path().filename().string();
    if (name.empty() || name.size() > 19 || name.find_first_not_of("0123456789") != std::string::npos) continue;
    ids.push_back(std::stoull(name));
  }
  return ids;
}

std::vector<BlobInfo> BlobStore::BlobsIn(int prefix) const {
  static const char kHex[] = "0123456789abcdef";
  const char name[3] = {kHex[(prefix >> 4) & 15], kHex[prefix & 15], 0};
  const std::string dir = blobs_dir_ + "/" + name;
  std::vector<BlobInfo> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (const dirent* e = ::readdir(d)) {
    std::string_view file = e->d_name;
    if (!IsSha256Hex(file) || file.substr(0, 2) != name) continue;
    struct stat st;
    if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
    out.push_back({std::string(file), int64_t{st.st_mtim.tv_sec} * 1000 + st.st_mtim.tv_nsec / 1000000,
                   static_cast<uint64_t>(st.st_size)});
  }
  ::closedir(d);
  return out;
}

bool BlobStore::RemoveUnused(const BlobInfo& blob) const {
  if (!IsSha256Hex(blob.sha256)) return false;
  const std::string path = BlobPath(blob.sha256);
  std::lock_guard<std::mutex> lock(reuse_mu_);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return false;
  const int64_t mtime_ms = int64_t{st.st_mtim.tv_sec} * 1000 + st.st_mtim.tv_nsec / 1000000;
  if (mtime_ms != blob.mtime_ms) return false;  // re-used or written again since it was listed
  return ::unlink(path.c_str()) == 0;
}

Result<std::string> BlobStore::Assemble(uint64_t upload_id, int count, uint64_t expect_size) const {
  auto w = NewWriter(expect_size);
  if (!w.ok()) return w.status();
  std::vector<char> buf(1 << 16);
  for (int n = 0; n < count; ++n) {
    int fd = ::open(ChunkPath(upload_id, n).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Errno("cannot open chunk " + std::to_string(n));
    Status s;
    for (;;) {
      ssize_t r = ::read(fd, buf.data(), buf.size());
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) s = Errno("cannot read chunk " + std::to_string(n));
      if (r <= 0) break;
      s = (*w)->Write(buf.data(), static_cast<size_t>(r));
      if (!s.ok()) break;
    }
    ::close(fd);
    if (!s.ok()) return s;
  }
  if ((*w)->size() != expect_size) {
    return Conflict("the chunks hold " + std::to_string((*w)->size()) + " bytes, not the " +
                    std::to_string(expect_size) + " announced");
  }
  return (*w)->Commit();
}

}  // namespace chatd::files
