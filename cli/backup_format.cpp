#include "cli/backup_format.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "base/json.h"
#include "relay/files.h"
#include "relay/relay.h"

namespace chatd::cli::backup {

namespace {

constexpr size_t kHeaderBytes = crypto_secretstream_xchacha20poly1305_HEADERBYTES;
constexpr size_t kABytes = crypto_secretstream_xchacha20poly1305_ABYTES;

std::string Errno(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + strerror(errno);
}

// An open file descriptor, closed on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_;
};

// Reads up to n bytes (fewer only at end of file).
Result<size_t> ReadFull(int fd, uint8_t* buf, size_t n, const std::string& path) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return IoError(Errno("cannot read", path));
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return got;
}

Status WriteAll(int fd, const uint8_t* buf, size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t w = write(fd, buf, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return IoError(Errno("cannot write", path));
    buf += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

class Sha256 {
 public:
  Sha256() { crypto_hash_sha256_init(&st_); }
  void Update(const uint8_t* p, size_t n) { crypto_hash_sha256_update(&st_, p, n); }
  std::string Hex() {
    uint8_t d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&st_, d);
    return crypto::HexEncode({d, sizeof d});
  }

 private:
  crypto_hash_sha256_state st_;
};

std::string_view Text(const uint8_t* p, size_t n) { return {reinterpret_cast<const char*>(p), n}; }

const uint8_t* Ad(const std::string& rel) { return reinterpret_cast<const uint8_t*>(rel.data()); }

}  // namespace

OutFile::~OutFile() {
  if (fd_ < 0) return;
  close(fd_);
  if (!finished_) unlink(path_.c_str());
}

Status OutFile::Open(const std::string& path, int mode) {
  path_ = path;
  fd_ = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd_ < 0) return IoError(Errno("cannot create", path));
  if (fchmod(fd_, mode) != 0) return IoError(Errno("cannot chmod", path));
  return Status::Ok();
}

Status OutFile::Write(std::string_view data) {
  return WriteAll(fd_, reinterpret_cast<const uint8_t*>(data.data()), data.size(), path_);
}

Status OutFile::Finish() {
  if (fsync(fd_) != 0) return IoError(Errno("cannot sync", path_));
  finished_ = true;
  return Status::Ok();
}

Result<crypto::SecretBytes> LoadKey(const std::string& path) {
  crypto::Init();
  auto text = ReadSmallFile(path, 256);
  if (!text.ok()) return BadRequest("backup key " + path + ": " + text.status().message());
  std::string t = *text;
  if (t.size() == crypto_secretstream_xchacha20poly1305_KEYBYTES) return crypto::SecretBytes(crypto::AsBytes(t));
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
  if (t.size() == 2 * crypto_secretstream_xchacha20poly1305_KEYBYTES) {
    auto raw = crypto::HexDecode(t);
    if (raw.ok()) {
      crypto::SecretBytes key{std::span<const uint8_t>(*raw)};
      sodium_memzero(raw->data(), raw->size());
      sodium_memzero(t.data(), t.size());
      return key;
    }
  }
  sodium_memzero(t.data(), t.size());
  return BadRequest("backup key " + path + ": not 32 bytes nor 64 hex digits");
}

namespace {
std::string ManifestMacHex(std::string_view manifest_json, const crypto::SecretBytes& key) {
  static constexpr std::string_view kContext = "chatd backup manifest v1";
  uint8_t sub[crypto_auth_KEYBYTES];
  crypto_generichash(sub, sizeof sub, reinterpret_cast<const uint8_t*>(kContext.data()), kContext.size(), key.data(),
                     key.size());
  uint8_t mac[crypto_auth_BYTES];
  crypto_auth(mac, reinterpret_cast<const uint8_t*>(manifest_json.data()), manifest_json.size(), sub);
  sodium_memzero(sub, sizeof sub);
  return crypto::HexEncode({mac, sizeof mac});
}
}  // namespace

std::string ManifestMac(std::string_view manifest_json, const crypto::SecretBytes& key) {
  return ManifestMacHex(manifest_json, key) + "\n";
}

bool ManifestMacMatches(std::string_view manifest_json, std::string_view mac_text, const crypto::SecretBytes& key) {
  if (!mac_text.empty() && mac_text.back() == '\n') mac_text.remove_suffix(1);
  return crypto::ConstantTimeEqual(ManifestMacHex(manifest_json, key), mac_text);
}

Status WriteNewKey(const std::string& path) {
  crypto::Init();
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) return Conflict("backup key " + path + " already exists; not replaced");
  crypto::SecretBytes key(crypto_secretstream_xchacha20poly1305_KEYBYTES);
  crypto_secretstream_xchacha20poly1305_keygen(key.data());
  std::string hex = crypto::HexEncode(key.span()) + "\n";
  Status s = WriteFileAtomic(path, hex, 0600);
  sodium_memzero(hex.data(), hex.size());
  return s;
}

bool AllowedPath(std::string_view p) {
  if (p == "chatd.db" || p == "chatd.toml" || p == Relay::kKeyFile || p == Relay::kAdminTokenFile) return true;
  // blobs/<2 hex>/<64 hex>, the 2 hex the name's first two.
  constexpr std::string_view kBlobs = "blobs/";
  if (p.size() != kBlobs.size() + 3 + 64 || p.substr(0, kBlobs.size()) != kBlobs) return false;
  std::string_view sub = p.substr(kBlobs.size(), 2), name = p.substr(kBlobs.size() + 3);
  return p[kBlobs.size() + 2] == '/' && files::IsSha256Hex(name) && name.substr(0, 2) == sub;
}

std::string ManifestJson(const Manifest& m) {
  json::JsonWriter w;
  w.BeginObject()
      .Key("format")
      .Str(kFormat)
      .Key("version")
      .Int(kVersion)
      .Key("relay")
      .Str(m.relay)
      .Key("node_id")
      .Int(m.node_id)
      .Key("created_at")
      .Time(m.created_at_ms)
      .Key("created_at_ms")
      .Int(m.created_at_ms)
      .Key("schema_version")
      .Int(m.schema_version)
      .Key("envelopes")
      .Int(m.envelopes)
      .Key("max_pos")
      .Int(m.max_pos)
      .Key("encryption")
      .Str(m.encrypted ? kCipher : "none")
      .Key("chunk_bytes")
      .Int(static_cast<int64_t>(kChunkBytes))
      .Key("files")
      .BeginArray();
  for (const auto& f : m.files) {
    w.BeginObject()
        .Key("path")
        .Str(f.path)
        .Key("size")
        .Int(static_cast<int64_t>(f.size))
        .Key("sha256")
        .Str(f.sha256)
        .Key("stored_size")
        .Int(static_cast<int64_t>(f.stored_size))
        .Key("stored_sha256")
        .Str(f.stored_sha256)
        .EndObject();
  }
  w.EndArray().EndObject();
  return w.Take() + "\n";
}

Result<Manifest> ParseManifest(std::string_view text) {
  auto bad = [](const std::string& why) { return Corrupt("manifest.json: " + why); };
  if (text.size() > kMaxManifestBytes) return bad("larger than " + std::to_string(kMaxManifestBytes) + " bytes");
  json::Doc doc;
  if (!json::Parse(text, &doc).ok() || !doc.IsObject()) return bad("not a JSON object");
  auto format = json::GetString(doc, "format", 64);
  if (!format.ok() || *format != kFormat) return bad("not a chatd backup manifest (format)");
  auto version = json::GetInt(doc, "version", 0, INT32_MAX);
  if (!version.ok() || *version != kVersion) return bad("unsupported version (this chatctl reads version 1)");
  Manifest m;
  auto relay = json::GetString(doc, "relay", 256);
  auto node = json::GetInt(doc, "node_id", 0, INT32_MAX);
  auto created = json::GetInt(doc, "created_at_ms", 0, INT64_MAX);
  auto schema = json::GetInt(doc, "schema_version", 0, INT32_MAX);
  auto envelopes = json::GetInt(doc, "envelopes", 0, INT64_MAX);
  auto max_pos = json::GetInt(doc, "max_pos", 0, INT64_MAX);
  auto enc = json::GetString(doc, "encryption", 64);
  auto chunk = json::GetInt(doc, "chunk_bytes", 0, INT64_MAX);
  for (const Status* s : {&relay.status(), &node.status(), &created.status(), &schema.status(), &envelopes.status(),
                          &max_pos.status(), &enc.status(), &chunk.status()}) {
    if (!s->ok()) return bad(s->message());
  }
  if (*enc != "none" && *enc != kCipher) return bad("unknown encryption " + std::string(*enc));
  if (*chunk != static_cast<int64_t>(kChunkBytes)) return bad("unsupported chunk_bytes");
  m.relay = std::string(*relay);
  m.node_id = *node;
  m.created_at_ms = *created;
  m.schema_version = *schema;
  m.envelopes = *envelopes;
  m.max_pos = *max_pos;
  m.encrypted = *enc == kCipher;
  auto files = doc.FindMember("files");
  if (files == doc.MemberEnd() || !files->value.IsArray()) return bad("files is not an array");
  if (files->value.Size() > kMaxFiles) return bad("more than " + std::to_string(kMaxFiles) + " files");
  std::set<std::string> seen;
  for (const auto& f : files->value.GetArray()) {
    if (!f.IsObject()) return bad("a files entry is not an object");
    auto path = json::GetString(f, "path", 256);
    if (!path.ok()) return bad(path.status().message());
    FileEntry e;
    e.path = std::string(*path);
    if (!AllowedPath(e.path)) return bad("refusing path \"" + e.path + "\" (not a file a backup holds)");
    if (!seen.insert(e.path).second) return bad("\"" + e.path + "\" listed twice");
    auto size = json::GetInt(f, "size", 0, INT64_MAX);
    auto stored = json::GetInt(f, "stored_size", 0, INT64_MAX);
    auto sha = json::GetString(f, "sha256", 64);
    auto stored_sha = json::GetString(f, "stored_sha256", 64);
    for (const Status* s : {&size.status(), &stored.status(), &sha.status(), &stored_sha.status()}) {
      if (!s->ok()) return bad(e.path + ": " + s->message());
    }
    if (!files::IsSha256Hex(*sha) || !files::IsSha256Hex(*stored_sha)) return bad(e.path + ": malformed sha256");
    e.size = static_cast<uint64_t>(*size);
    e.stored_size = static_cast<uint64_t>(*stored);
    e.sha256 = std::string(*sha);
    e.stored_sha256 = std::string(*stored_sha);
    m.files.push_back(std::move(e));
  }
  for (const char* need : {"chatd.db", "chatd.toml", Relay::kKeyFile, Relay::kAdminTokenFile}) {
    if (!seen.count(need)) return bad(std::string("does not list ") + need);
  }
  return m;
}

Status StoreFile(const std::string& src, const std::string& dst, const std::string& rel, const crypto::SecretBytes* key,
                 int mode, const std::string& want_sha256, FileEntry* e) {
  Fd in(open(src.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!in.ok()) return IoError(Errno("cannot open", src));
  OutFile out;
  if (Status s = out.Open(dst, mode); !s.ok()) return s;
  Sha256 plain, stored;
  e->path = rel;
  e->size = e->stored_size = 0;
  crypto_secretstream_xchacha20poly1305_state st;
  std::vector<uint8_t> buf(kChunkBytes), enc(kChunkBytes + kABytes);
  auto emit = [&](const uint8_t* p, size_t n) -> Status {
    stored.Update(p, n);
    e->stored_size += n;
    return out.Write(Text(p, n));
  };
  if (key) {
    uint8_t header[kHeaderBytes];
    crypto_secretstream_xchacha20poly1305_init_push(&st, header, key->data());
    if (Status s = emit(header, sizeof header); !s.ok()) return s;
  }
  // Read one chunk ahead so the last chunk (possibly empty) can be tagged FINAL.
  auto n = ReadFull(in.get(), buf.data(), buf.size(), src);
  if (!n.ok()) return n.status();
  while (true) {
    std::vector<uint8_t> next(kChunkBytes);
    size_t next_n = 0;
    if (*n == kChunkBytes) {
      auto r = ReadFull(in.get(), next.data(), next.size(), src);
      if (!r.ok()) return r.status();
      next_n = *r;
    }
    bool last = *n < kChunkBytes || next_n == 0;
    plain.Update(buf.data(), *n);
    e->size += *n;
    Status s;
    if (key) {
      unsigned long long clen = 0;
      crypto_secretstream_xchacha20poly1305_push(&st, enc.data(), &clen, buf.data(), *n, Ad(rel), rel.size(),
                                                 last ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0);
      s = emit(enc.data(), static_cast<size_t>(clen));
    } else {
      s = emit(buf.data(), *n);
    }
    if (!s.ok()) return s;
    if (last) break;
    buf.swap(next);
    *n = next_n;
  }
  sodium_memzero(buf.data(), buf.size());
  if (Status s = out.Finish(); !s.ok()) return s;
  e->sha256 = plain.Hex();
  e->stored_sha256 = stored.Hex();
  if (!want_sha256.empty() && e->sha256 != want_sha256) {
    return Corrupt(src + ": content's sha256 is " + e->sha256 + ", not its name");
  }
  return Status::Ok();
}

Status ReadStoredFile(const std::string& dir, const FileEntry& e, const crypto::SecretBytes* key,
                      const std::function<Status(std::string_view)>& sink) {
  const std::string path = dir + "/" + e.path;
  struct stat st;
  // No symbolic link on the way (blobs/, blobs/XX/, the file): nothing outside DIR is read.
  for (size_t slash = e.path.find('/'); slash != std::string::npos; slash = e.path.find('/', slash + 1)) {
    const std::string sub = dir + "/" + e.path.substr(0, slash);
    if (lstat(sub.c_str(), &st) != 0) return NotFound(e.path + ": missing from the backup");
    if (!S_ISDIR(st.st_mode)) return Corrupt(e.path + ": " + e.path.substr(0, slash) + " is not a directory");
  }
  if (lstat(path.c_str(), &st) != 0) return NotFound(e.path + ": missing from the backup");
  if (!S_ISREG(st.st_mode)) return Corrupt(e.path + ": not a regular file");
  if (static_cast<uint64_t>(st.st_size) != e.stored_size) {
    return Corrupt(e.path + ": size " + std::to_string(st.st_size) + ", the manifest says " +
                   std::to_string(e.stored_size));
  }
  Fd in(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!in.ok()) return IoError(Errno("cannot open", path));
  Sha256 plain, stored;
  uint64_t plain_size = 0;
  auto take = [&](const uint8_t* p, size_t n) -> Status {
    plain.Update(p, n);
    plain_size += n;
    if (plain_size > e.size) return Corrupt(e.path + ": longer than the manifest says");
    return sink ? sink(Text(p, n)) : Status::Ok();
  };
  std::vector<uint8_t> buf(kChunkBytes + kABytes), out(kChunkBytes);
  if (key) {
    // The stored bytes first: a mismatch here means the file was altered, so a failure to
    // decrypt below means the key is wrong.
    Sha256 whole;
    while (true) {
      auto n = ReadFull(in.get(), buf.data(), buf.size(), path);
      if (!n.ok()) return n.status();
      if (*n == 0) break;
      whole.Update(buf.data(), *n);
    }
    if (whole.Hex() != e.stored_sha256) {
      return Corrupt(e.path + ": sha256 of the stored file does not match the manifest (altered or damaged)");
    }
    if (lseek(in.get(), 0, SEEK_SET) != 0) return IoError(Errno("cannot seek", path));
    uint8_t header[kHeaderBytes];
    auto h = ReadFull(in.get(), header, sizeof header, path);
    if (!h.ok()) return h.status();
    if (*h != sizeof header) return Corrupt(e.path + ": truncated (no encryption header)");
    crypto_secretstream_xchacha20poly1305_state ss;
    if (crypto_secretstream_xchacha20poly1305_init_pull(&ss, header, key->data()) != 0) {
      return Corrupt(e.path + ": bad encryption header");
    }
    bool final = false;
    while (!final) {
      auto n = ReadFull(in.get(), buf.data(), buf.size(), path);
      if (!n.ok()) return n.status();
      if (*n < kABytes) return Corrupt(e.path + ": truncated (no final chunk)");
      unsigned long long mlen = 0;
      unsigned char tag = 0;
      if (crypto_secretstream_xchacha20poly1305_pull(&ss, out.data(), &mlen, &tag, buf.data(), *n, Ad(e.path),
                                                     e.path.size()) != 0) {
        return Corrupt(e.path + ": cannot decrypt: wrong backup key (or the file and manifest were altered)");
      }
      final = tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL;
      if (!final && *n != buf.size()) return Corrupt(e.path + ": truncated (no final chunk)");
      if (Status s = take(out.data(), static_cast<size_t>(mlen)); !s.ok()) return s;
    }
    uint8_t extra;
    auto more = ReadFull(in.get(), &extra, 1, path);
    if (!more.ok()) return more.status();
    if (*more != 0) return Corrupt(e.path + ": data after the final chunk");
    sodium_memzero(out.data(), out.size());
  } else {
    while (true) {
      auto n = ReadFull(in.get(), buf.data(), buf.size(), path);
      if (!n.ok()) return n.status();
      if (*n == 0) break;
      stored.Update(buf.data(), *n);
      if (Status s = take(buf.data(), *n); !s.ok()) return s;
    }
  }
  if (!key && stored.Hex() != e.stored_sha256) {  // (an encrypted file's was checked first)
    return Corrupt(e.path + ": sha256 of the stored file does not match the manifest");
  }
  if (plain_size != e.size) return Corrupt(e.path + ": size differs from the manifest");
  if (plain.Hex() != e.sha256) return Corrupt(e.path + ": sha256 does not match the manifest");
  return Status::Ok();
}

}  // namespace chatd::cli::backup
