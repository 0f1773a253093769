// cli/backup_format.h — the on-disk format of a `chatctl backup` directory (see chatctl(1),
// BACKUP): DIR/manifest.json plus the files it lists, each stored as is or encrypted.
//
// Files a backup may hold (nothing else is accepted from a manifest, so a tampered
// manifest cannot name a path outside the backup or the restore target): chatd.db,
// chatd.toml, relay.key, admin.token and blobs/<2 hex>/<sha256 hex>.
//
// Encrypted files (libsodium crypto_secretstream_xchacha20poly1305): the 24-byte stream
// header, then chunks of kChunkBytes plaintext (the last one shorter, tagged FINAL; an
// empty file is one empty FINAL chunk), each with the file's relative path as associated
// data, so a stored file cannot be swapped for another one of the same backup. The
// manifest records the plaintext's size and sha256 and the stored file's size and sha256.
//
// Single-threaded (chatctl's main thread); every input read from a backup is bounded.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "crypto/bytes.h"

namespace chatd::cli::backup {

inline constexpr const char* kManifestFile = "manifest.json";
// An encrypted backup's manifest.json authenticated: hex HMAC-SHA-512-256 (crypto_auth)
// of its exact bytes, keyed by BLAKE2b("chatd backup manifest v1", key = the backup key).
// Without it, whoever can write the backup could change the manifest undetected: swap in a
// file of another backup made with the same key, drop blobs, or say "not encrypted" and
// put plaintext files of their own in its place.
inline constexpr const char* kManifestMacFile = "manifest.mac";
inline constexpr const char* kFormat = "chatd-backup";
inline constexpr int kVersion = 1;
inline constexpr const char* kCipher = "xchacha20poly1305-secretstream";
inline constexpr size_t kChunkBytes = 64 * 1024;
inline constexpr size_t kMaxManifestBytes = 64u << 20;
inline constexpr size_t kMaxFiles = 1000000;

struct FileEntry {
  std::string path;  // relative, '/'-separated
  uint64_t size = 0;
  std::string sha256;  // of the plaintext
  uint64_t stored_size = 0;
  std::string stored_sha256;  // of the bytes in the backup (= the plaintext's if not encrypted)
};

struct Manifest {
  std::string relay;
  int64_t node_id = 0;
  int64_t created_at_ms = 0;
  int64_t schema_version = 0;
  int64_t envelopes = 0;
  int64_t max_pos = 0;
  bool encrypted = false;
  std::vector<FileEntry> files;
};

// The backup key: 32 bytes, from a file holding exactly 32 raw bytes or 64 hex digits
// (a trailing newline allowed). The error names the file.
Result<crypto::SecretBytes> LoadKey(const std::string& path);
// Writes a new random key as 64 hex digits and a newline, mode 0600; refuses to replace a file.
Status WriteNewKey(const std::string& path);
// manifest.mac's content for these manifest bytes (64 hex digits and a newline).
std::string ManifestMac(std::string_view manifest_json, const crypto::SecretBytes& key);
// Whether `mac_text` (manifest.mac's content, a trailing newline allowed) authenticates
// these manifest bytes under the key; compared in constant time.
bool ManifestMacMatches(std::string_view manifest_json, std::string_view mac_text, const crypto::SecretBytes& key);

// True iff `path` is one a backup may hold (see the top of this file).
bool AllowedPath(std::string_view path);

std::string ManifestJson(const Manifest& m);
// Parses and checks a manifest (bounded, every path AllowedPath, no duplicates, the four
// required files present).
Result<Manifest> ParseManifest(std::string_view text);

// A file being written: created exclusively with `mode`, fsynced by Finish(), closed (and,
// unless finished, removed) by the destructor. Errors name the file.
class OutFile {
 public:
  OutFile() = default;
  ~OutFile();
  OutFile(const OutFile&) = delete;
  OutFile& operator=(const OutFile&) = delete;
  Status Open(const std::string& path, int mode);
  Status Write(std::string_view data);
  Status Finish();

 private:
  std::string path_;
  int fd_ = -1;
  bool finished_ = false;
};

// Copies src to dst (created, mode `mode`, fsynced), encrypting with `key` if non-null
// (`rel` is the associated data); fills *e (path = rel). With `want_sha256` set, the
// plaintext's sha256 must equal it (a blob's name): a mismatch is kCorrupt naming src.
Status StoreFile(const std::string& src, const std::string& dst, const std::string& rel, const crypto::SecretBytes* key,
                 int mode, const std::string& want_sha256, FileEntry* e);

// Reads the stored file DIR/e.path, decrypting with `key` when the backup is encrypted,
// and checks stored size, stored sha256, plaintext size and sha256 against `e`; every
// plaintext chunk goes to `sink` (may be empty) as it is read. Errors name the file.
Status ReadStoredFile(const std::string& dir, const FileEntry& e, const crypto::SecretBytes* key,
                      const std::function<Status(std::string_view)>& sink);

}  // namespace chatd::cli::backup
