// relay/files.h — file blobs on disk, signed download URLs, and the checks that bound what a
// client may name a file.
//
// Blobs are content-addressed: DATA/blobs/<first 2 hex>/<sha256 hex>, written once (a
// temp file under DATA/tmp/, fsynced, renamed into place, the directory fsynced), never
// changed, so the same content uploaded twice is one blob. Paths are built from hashes and
// ids only, never from anything a client named. Resumable uploads keep their chunks in
// DATA/uploads/<upload_id>/<n> (each written to a temp file and renamed, so a chunk is
// either all there or absent, and a re-PUT replaces it).
//
// Threads: BlobStore, BlobWriter and UrlSigner are used by the REST pool threads. BlobStore
// and UrlSigner are immutable after construction and safe to share; a BlobWriter belongs to
// the one request that writes it. The helpers are pure functions.
#pragma once

#include <sodium.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "crypto/bytes.h"

namespace chatd::files {

inline constexpr size_t kMaxFilenameBytes = 255;  // after sanitising, bytes of UTF-8
inline constexpr size_t kMaxMimeBytes = 127;
inline constexpr int kMaxChunks = 16384;  // chunks of one resumable upload

// A file's life (store::Queries::FileInUse): readable and sendable while a message shows it,
// or, never sent, for api.unsent_file_ttl after its upload; then 404 with this message, and
// the files janitor deletes its content (unless a file in use has the same).
inline constexpr const char* kFileGone =
    "no such file: the messages that showed it were deleted or have disappeared, or it was never sent and "
    "was uploaded longer than api.unsent_file_ttl ago";
// The upload time before which a file never sent is no longer in use.
inline int64_t UnsentSince(int64_t now_ms, int unsent_ttl_s) { return now_ms - int64_t{unsent_ttl_s} * 1000; }

// A client's file name made safe to store and show: the part after the last '/' or '\',
// control characters and invalid UTF-8 dropped, leading dots and spaces trimmed, cut to
// kMaxFilenameBytes on a character boundary; "file" if nothing is left.
std::string SanitizeFilename(std::string_view name);
// A MIME type as "type/subtype" of token characters, lower-cased, parameters dropped;
// "application/octet-stream" if `mime` is empty, malformed or longer than kMaxMimeBytes.
std::string NormalizeMime(std::string_view mime);
// "image", "video", "audio" or "file", from a normalised MIME type.
std::string FileTypeOf(std::string_view mime);
// A Content-Disposition header value: attachment; filename="<ASCII fallback>";
// filename*=UTF-8''<percent-encoded name>.
std::string ContentDisposition(std::string_view filename);
// True iff `hex` is 64 lower-case hex digits.
bool IsSha256Hex(std::string_view hex);

// Signs and checks download URLs: sig = HMAC-SHA-512-256 (crypto_auth) over
// "file:<file_id>:<exp_ms>" with a key derived from the relay key (KeyPair::DeriveKey).
class UrlSigner {
 public:
  explicit UrlSigner(crypto::SecretBytes key);
  // Lower-case hex signature of (file_id, exp_ms).
  std::string Sign(uint64_t file_id, int64_t exp_ms) const;
  // "/api/v1/files/<id>/content?exp=<exp_ms>&sig=<hex>".
  std::string Path(uint64_t file_id, int64_t exp_ms) const;
  // kForbidden if the signature does not match (constant-time) or now_ms is past exp_ms.
  Status Check(uint64_t file_id, int64_t exp_ms, std::string_view sig_hex, int64_t now_ms) const;

 private:
  crypto::SecretBytes key_;
};

// A temp file being written and hashed (SHA-256). Commit() makes it a blob; destroying an
// uncommitted writer removes the temp file.
class BlobWriter {
 public:
  BlobWriter(const BlobWriter&) = delete;
  BlobWriter& operator=(const BlobWriter&) = delete;
  ~BlobWriter();
  // Appends; kTooLarge (and nothing more is written) once the total passes max_bytes.
  Status Write(const char* data, size_t n);
  uint64_t size() const { return size_; }
  bool over_limit() const { return over_; }
  // fsyncs, renames the temp file to the blob named by its hash (or drops it if that blob
  // exists), fsyncs the directory. Returns the hash (hex). With `expect` set, content of
  // another hash is not stored (kCorrupt).
  Result<std::string> Commit(std::string_view expect = {});
  // Renames the temp file to `path` instead (a resumable upload's chunk); no hashing needed.
  Status CommitTo(const std::string& path);

 private:
  friend class BlobStore;
  BlobWriter(const class BlobStore* store, int fd, std::string tmp_path, uint64_t max_bytes);
  const BlobStore* store_;
  int fd_;
  std::string tmp_path_;
  uint64_t max_bytes_;
  uint64_t size_ = 0;
  bool over_ = false;
  bool committed_ = false;
  crypto_hash_sha256_state sha_;
};

// A blob on disk, as the files janitor sees it.
struct BlobInfo {
  std::string sha256;    // hex, the file name
  int64_t mtime_ms = 0;  // written, or last re-used by a commit of the same content
  uint64_t size = 0;
};

class BlobStore {
 public:
  explicit BlobStore(std::string data_dir);
  // Creates blobs/, tmp/ and uploads/ if missing and removes temp files a crash left.
  Status Init();
  std::string BlobPath(std::string_view sha_hex) const;
  bool Has(std::string_view sha_hex) const;
  // A new temp file that refuses to grow past max_bytes.
  Result<std::unique_ptr<BlobWriter>> NewWriter(uint64_t max_bytes) const;
  // Resumable uploads: DATA/uploads/<id> and its chunk n.
  std::string UploadDir(uint64_t upload_id) const;
  std::string ChunkPath(uint64_t upload_id, int n) const;
  Status MakeUploadDir(uint64_t upload_id) const;
  // Removes an upload's directory and everything in it (missing is fine).
  void RemoveUpload(uint64_t upload_id) const;
  // Upload ids that have a directory (to find ones whose row is gone).
  std::vector<uint64_t> UploadDirs() const;
  // Concatenates chunks 0..count-1 into a new blob (hashing as it goes); the hash.
  Result<std::string> Assemble(uint64_t upload_id, int count, uint64_t expect_size) const;
  const std::string& tmp_dir() const { return tmp_dir_; }
  // The blobs in blobs/<prefix as 2 hex digits>/ (prefix 0..255); other names are skipped.
  std::vector<BlobInfo> BlobsIn(int prefix) const;
  // Deletes the blob unless a commit re-used or wrote it since `blob` was listed (checked
  // and deleted under the lock a commit of existing content takes). True if deleted.
  bool RemoveUnused(const BlobInfo& blob) const;

 private:
  friend class BlobWriter;
  // Serialises "this content is a blob already, re-use it" (BlobWriter::Commit, which then
  // refreshes the blob's mtime) against RemoveUnused.
  mutable std::mutex reuse_mu_;
  std::string blobs_dir_, tmp_dir_, uploads_dir_;
};

}  // namespace chatd::files
