// chatctl backup create|verify|restore|keygen — backups of a relay's data directory
// (DESIGN.md §5): a consistent snapshot of chatd.db taken with SQLite's online backup API
// while the relay runs, every blob (its sha256 checked against its name), chatd.toml and
// the secrets, optionally encrypted, with a manifest of sizes and sha256s, authenticated by
// manifest.mac when encrypted (format: cli/backup_format.h). verify and restore work offline, on the backup alone. search.db is
// not backed up: the relay rebuilds the index from the store when it is missing. restore
// marks the store it writes as restored (meta row "restored"), so that a federated relay
// takes back from its peers what it signed after the backup before it signs anything new.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "base/json.h"
#include "base/time.h"
#include "cli/backup_format.h"
#include "cli/common.h"
#include "conf/config.h"
#include "relay/files.h"
#include "relay/relay.h"
#include "store/db.h"
#include "store/store.h"

namespace chatd::cli {

namespace {

namespace fs = std::filesystem;
using backup::FileEntry;
using backup::Manifest;

constexpr const char* kDbFile = store::Store::kFileName;
constexpr const char* kTomlFile = "chatd.toml";
constexpr size_t kMaxTomlBytes = 1 << 20;

void Fail(Globals& g, const Status& s, int code = kFail) {
  PrintError(s);
  g.exit_code = code;
}

// Every file a backup or restore writes is private: the secrets, and the store and
// config (chatd.toml is written 0600 by init) as well.
constexpr int kFileMode = 0600;

// A directory made with mkdtemp and removed, with whatever it holds, unless released.
class TempDir {
 public:
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  Status Make(const std::string& prefix) {
    std::string t = prefix + "XXXXXX";
    if (!mkdtemp(t.data())) return IoError("cannot create a temp directory " + t + ": " + strerror(errno));
    path_ = t;
    return Status::Ok();
  }
  const std::string& path() const { return path_; }
  void Release() { path_.clear(); }

 private:
  std::string path_;
};

Status SyncDir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open " + dir + ": " + strerror(errno));
  int rc = fsync(fd);
  close(fd);
  return rc == 0 ? Status::Ok() : IoError("cannot sync " + dir + ": " + strerror(errno));
}

// What a store says about itself.
struct DbFacts {
  int64_t schema_version = 0, envelopes = 0, max_pos = 0;
};

// Reads the facts of the store at `path` (read-only); with `integrity`, PRAGMA
// integrity_check must answer "ok" as well.
Result<DbFacts> ReadDbFacts(const std::string& path, bool integrity) {
  auto db = store::Db::Open(path, false, true);
  if (!db.ok()) return db.status();
  DbFacts f;
  if (integrity) {
    auto st = (*db)->Prepare("PRAGMA integrity_check");
    if (!st.ok()) return Corrupt(std::string(kDbFile) + ": " + st.status().message());
    std::string problems;
    while (true) {
      auto row = st->Step();
      if (!row.ok()) return Corrupt(std::string(kDbFile) + ": integrity_check: " + row.status().message());
      if (!*row) break;
      std::string line = st->Text(0);
      if (line != "ok" && problems.size() < 4096) problems += (problems.empty() ? "" : "; ") + line;
    }
    if (!problems.empty()) return Corrupt(std::string(kDbFile) + ": integrity_check: " + problems);
  }
  auto v = (*db)->Prepare("PRAGMA user_version");
  if (!v.ok()) return Corrupt(std::string(kDbFile) + ": " + v.status().message());
  auto vrow = v->Step();
  if (!vrow.ok() || !*vrow) return Corrupt(std::string(kDbFile) + ": no user_version");
  f.schema_version = v->Int(0);
  auto c = (*db)->Prepare("SELECT count(*), coalesce(max(pos), 0) FROM envelopes");
  if (!c.ok()) return Corrupt(std::string(kDbFile) + ": " + c.status().message());
  auto crow = c->Step();
  if (!crow.ok() || !*crow) return Corrupt(std::string(kDbFile) + ": cannot count envelopes");
  f.envelopes = c->Int(0);
  f.max_pos = c->Int(1);
  return f;
}

// Copies the live store into `dst` with the online backup API: every page in one read
// transaction of the source (WAL mode: the relay keeps writing meanwhile), so the copy
// is the store as of one commit. The copy is switched to rollback journaling so it is one
// self-contained file (chatd switches it back to WAL when it opens it).
Status Snapshot(const std::string& src_path, const std::string& dst_path) {
  auto src = store::Db::Open(src_path, false, true);
  if (!src.ok()) return src.status();
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(dst_path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  std::unique_ptr<sqlite3, store::SqliteCloser> dst(raw);
  if (rc != SQLITE_OK) return IoError("cannot create " + dst_path + ": " + sqlite3_errstr(rc));
  sqlite3_backup* b = sqlite3_backup_init(dst.get(), "main", (*src)->raw(), "main");
  if (!b) return IoError("cannot start the snapshot of " + src_path + ": " + sqlite3_errmsg(dst.get()));
  for (int busy = 0; busy < 200; ++busy) {  // a busy source: retry for up to ~10 s
    rc = sqlite3_backup_step(b, -1);
    if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED) break;
    sqlite3_sleep(50);
  }
  sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE) return IoError("snapshot of " + src_path + " failed: " + sqlite3_errstr(rc));
  char* err = nullptr;
  if (sqlite3_exec(dst.get(), "PRAGMA journal_mode=DELETE", nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err ? err : "?";
    sqlite3_free(err);
    return IoError("snapshot " + dst_path + ": " + m);
  }
  return Status::Ok();
}

// "an empty directory or nothing there"; else the reason it is not.
Status CheckFreshOut(const std::string& out) {
  std::error_code ec;
  auto st = fs::symlink_status(out, ec);
  if (ec || !fs::exists(st)) return Status::Ok();
  if (!fs::is_directory(st)) return Conflict(out + " exists and is not a directory");
  if (!fs::is_empty(out, ec) || ec) return Conflict(out + " is not empty; a backup goes into a new or empty directory");
  return Status::Ok();
}

// Every blob file under DATA/blobs, as relative paths "blobs/xx/<sha256>", sorted. Other
// entries there are reported on stderr and skipped.
Result<std::vector<std::string>> ListBlobs(const std::string& data_dir) {
  std::vector<std::string> out;
  const fs::path root = fs::path(data_dir) / "blobs";
  std::error_code ec;
  if (!fs::exists(root, ec)) return out;
  for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_directory()) continue;
    std::string rel = "blobs/" + it->path().lexically_relative(root).string();
    if (!it->is_regular_file() || !backup::AllowedPath(rel)) {
      fprintf(stderr, "chatctl: skipping %s: not a blob\n", it->path().c_str());
      continue;
    }
    out.push_back(rel);
  }
  if (ec) return IoError("cannot list " + root.string() + ": " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

struct CreateOpts {
  std::string out, key_file;
};

void Create(Globals& g, const CreateOpts& o) {
  auto cfg = LoadRelayConfig(g);
  if (!cfg.ok()) return;
  std::unique_ptr<crypto::SecretBytes> key;
  if (!o.key_file.empty()) {
    auto k = backup::LoadKey(o.key_file);
    if (!k.ok()) return Fail(g, k.status());
    key = std::make_unique<crypto::SecretBytes>(std::move(*k));
  }
  const fs::path out = fs::absolute(o.out).lexically_normal();
  std::string out_s = out.string();
  while (out_s.size() > 1 && out_s.back() == '/') out_s.pop_back();
  if (Status s = CheckFreshOut(out_s); !s.ok()) return Fail(g, s);
  const std::string data = cfg->data_dir;
  TempDir tmp;  // next to OUT, renamed to OUT at the end
  if (Status s =
          tmp.Make(fs::path(out_s).parent_path().string() + "/." + fs::path(out_s).filename().string() + ".tmp-");
      !s.ok()) {
    return Fail(g, s);
  }
  Manifest m;
  m.relay = cfg->relay_name;
  m.node_id = cfg->node_id;
  m.created_at_ms = NowMs();
  m.encrypted = key != nullptr;
  const std::string snap = tmp.path() + "/.snapshot.db";
  if (Status s = Snapshot(data + "/" + kDbFile, snap); !s.ok()) return Fail(g, s);
  auto facts = ReadDbFacts(snap, false);
  if (!facts.ok()) return Fail(g, facts.status());
  m.schema_version = facts->schema_version;
  m.envelopes = facts->envelopes;
  m.max_pos = facts->max_pos;
  // Blobs are listed after the snapshot: a blob is in place before the envelope naming
  // it commits, so every blob the snapshot references is found.
  auto blobs = ListBlobs(data);
  if (!blobs.ok()) return Fail(g, blobs.status());
  struct Source {
    std::string src, rel, want_sha256;
  };
  std::vector<Source> sources = {{snap, kDbFile, ""},
                                 {cfg->config_path, kTomlFile, ""},
                                 {data + "/" + Relay::kKeyFile, Relay::kKeyFile, ""},
                                 {data + "/" + Relay::kAdminTokenFile, Relay::kAdminTokenFile, ""}};
  for (const auto& b : *blobs) sources.push_back({data + "/" + b, b, b.substr(b.rfind('/') + 1)});
  uint64_t bytes = 0;
  for (const auto& src : sources) {
    fs::path dst = fs::path(tmp.path()) / src.rel;
    std::error_code ec;
    fs::create_directories(dst.parent_path(), ec);
    if (ec) return Fail(g, IoError("cannot create " + dst.parent_path().string() + ": " + ec.message()));
    FileEntry e;
    Status s = backup::StoreFile(src.src, dst.string(), src.rel, key.get(), kFileMode, src.want_sha256, &e);
    if (!s.ok()) return Fail(g, s);
    bytes += e.stored_size;
    m.files.push_back(std::move(e));
  }
  fs::remove(snap);
  const std::string manifest = backup::ManifestJson(m);
  if (Status s = WriteFileAtomic(tmp.path() + "/" + backup::kManifestFile, manifest, kFileMode); !s.ok()) {
    return Fail(g, s);
  }
  if (key) {
    if (Status s = WriteFileAtomic(tmp.path() + "/" + backup::kManifestMacFile, backup::ManifestMac(manifest, *key),
                                   kFileMode);
        !s.ok()) {
      return Fail(g, s);
    }
  }
  std::error_code ec;
  if (fs::exists(out_s, ec)) fs::remove(out_s, ec);  // the empty directory CheckFreshOut allowed
  if (rename(tmp.path().c_str(), out_s.c_str()) != 0) {
    return Fail(g, IoError("cannot rename " + tmp.path() + " to " + out_s + ": " + strerror(errno)));
  }
  tmp.Release();
  (void)SyncDir(fs::path(out_s).parent_path().string());
  if (g.output == "json") {
    json::JsonWriter w;
    w.BeginObject()
        .Key("out")
        .Str(out_s)
        .Key("files")
        .Int(static_cast<int64_t>(m.files.size()))
        .Key("blobs")
        .Int(static_cast<int64_t>(blobs->size()))
        .Key("bytes")
        .Int(static_cast<int64_t>(bytes))
        .Key("envelopes")
        .Int(m.envelopes)
        .Key("max_pos")
        .Int(m.max_pos)
        .Key("schema_version")
        .Int(m.schema_version)
        .Key("encrypted")
        .Bool(m.encrypted)
        .EndObject();
    printf("%s\n", w.Take().c_str());
  } else {
    printf("backup %s: %zu files (%zu blobs), %llu bytes, %lld envelopes (max pos %lld), schema %lld%s\n",
           out_s.c_str(), m.files.size(), blobs->size(), static_cast<unsigned long long>(bytes),
           static_cast<long long>(m.envelopes), static_cast<long long>(m.max_pos),
           static_cast<long long>(m.schema_version), m.encrypted ? ", encrypted" : "");
  }
}

// Reads DIR/manifest.json (bounded) and checks it; its bytes in *text.
Result<Manifest> LoadManifest(const std::string& dir, std::string* text) {
  const std::string path = dir + "/" + backup::kManifestFile;
  auto read = ReadSmallFile(path, backup::kMaxManifestBytes);
  if (!read.ok()) return Status(read.status().code(), path + ": " + read.status().message());
  *text = std::move(*read);
  auto m = backup::ParseManifest(*text);
  if (!m.ok()) return Corrupt(dir + "/" + m.status().message());
  return m;
}

// An encrypted backup's manifest must be the one made with the key (backup_format.h).
Status CheckManifestMac(const std::string& dir, const std::string& manifest, const crypto::SecretBytes& key,
                        bool allow_unauthenticated) {
  const std::string path = dir + "/" + backup::kManifestMacFile;
  auto mac = ReadSmallFile(path, 256);
  if (!mac.ok()) {
    if (allow_unauthenticated) {
      fprintf(stderr, "chatctl: %s: %s; the manifest is used unauthenticated (--allow-unauthenticated)\n", path.c_str(),
              mac.status().message().c_str());
      return Status::Ok();
    }
    return Corrupt(path + ": " + mac.status().message() +
                   ": the manifest cannot be authenticated (a backup made before chatctl wrote manifest.mac, or "
                   "altered); pass --allow-unauthenticated to use it anyway");
  }
  if (!backup::ManifestMacMatches(manifest, *mac, key)) {
    return Corrupt(dir + "/" + backup::kManifestFile + " does not match " + backup::kManifestMacFile +
                   ": wrong backup key (or the manifest was altered)");
  }
  return Status::Ok();
}

// Checks every file of the backup in `dir` against `m`. With `staging` set, each file's
// plaintext is written to staging/<path> (restore); chatd.db always is (to `staging`, or
// else a temp directory) for PRAGMA integrity_check. Every problem is returned, in order.
std::vector<std::string> CheckBackup(const std::string& dir, const Manifest& m, const crypto::SecretBytes* key,
                                     const std::string& staging) {
  std::vector<std::string> problems;
  TempDir scratch;
  std::string db_dir = staging;
  if (db_dir.empty()) {
    std::error_code ec;
    Status s = scratch.Make((fs::temp_directory_path(ec) / "chatctl-verify-").string());
    if (!s.ok()) return {s.message()};
    db_dir = scratch.path();
  }
  for (const auto& e : m.files) {
    const bool write = !staging.empty() || e.path == kDbFile;
    backup::OutFile out;
    if (write) {
      fs::path dst = fs::path(e.path == kDbFile ? db_dir : staging) / e.path;
      std::error_code ec;
      fs::create_directories(dst.parent_path(), ec);
      Status s = out.Open(dst.string(), kFileMode);
      if (!s.ok()) {
        problems.push_back(s.message());
        continue;
      }
    }
    Status s = backup::ReadStoredFile(dir, e, key,
                                      [&](std::string_view chunk) { return write ? out.Write(chunk) : Status::Ok(); });
    if (s.ok() && write) s = out.Finish();
    if (!s.ok()) problems.push_back(s.message());
  }
  bool db_ok = std::none_of(problems.begin(), problems.end(),
                            [](const std::string& p) { return p.rfind(std::string(kDbFile) + ":", 0) == 0; });
  if (db_ok) {
    auto facts = ReadDbFacts(db_dir + "/" + kDbFile, true);
    if (!facts.ok()) {
      problems.push_back(facts.status().message());
    } else if (facts->schema_version != m.schema_version || facts->envelopes != m.envelopes ||
               facts->max_pos != m.max_pos) {
      problems.push_back(std::string(kDbFile) +
                         ": schema version, envelope count or max pos differs from the manifest");
    }
  }
  return problems;
}

// Loads the manifest and the key for DIR; on error prints it, sets the exit code and
// returns false.
bool OpenBackup(Globals& g, const std::string& dir, const std::string& key_file, bool allow_unauthenticated,
                Manifest* m, std::unique_ptr<crypto::SecretBytes>* key) {
  std::string text;
  auto loaded = LoadManifest(dir, &text);
  if (!loaded.ok()) {
    Fail(g, loaded.status());
    return false;
  }
  *m = std::move(*loaded);
  if (m->encrypted && key_file.empty()) {
    Fail(g, BadRequest("the backup in " + dir + " is encrypted: pass --key-file"), kUsage);
    return false;
  }
  if (!m->encrypted && !key_file.empty()) {
    // Refused rather than ignored: saying "not encrypted" is how an altered manifest would
    // bring in plaintext files of someone else's making.
    Fail(g, Corrupt("the manifest in " + dir +
                    " says the backup is not encrypted, but --key-file was given: if it was made with a key, "
                    "it was altered; if it was made without one, leave out --key-file"));
    return false;
  }
  if (m->encrypted) {
    auto k = backup::LoadKey(key_file);
    if (!k.ok()) {
      Fail(g, k.status());
      return false;
    }
    *key = std::make_unique<crypto::SecretBytes>(std::move(*k));
    if (Status s = CheckManifestMac(dir, text, **key, allow_unauthenticated); !s.ok()) {
      Fail(g, s);
      return false;
    }
  }
  return true;
}

void PrintProblems(Globals& g, const std::string& dir, const std::vector<std::string>& problems) {
  for (const auto& p : problems) fprintf(stderr, "chatctl: backup %s: %s\n", dir.c_str(), p.c_str());
  if (!problems.empty()) g.exit_code = kFail;
}

struct VerifyOpts {
  std::string dir, key_file;
  bool allow_unauthenticated = false;
};

void Verify(Globals& g, const VerifyOpts& o) {
  Manifest m;
  std::unique_ptr<crypto::SecretBytes> key;
  if (!OpenBackup(g, o.dir, o.key_file, o.allow_unauthenticated, &m, &key)) return;
  auto problems = CheckBackup(o.dir, m, key.get(), "");
  PrintProblems(g, o.dir, problems);
  if (g.output == "json") {
    json::JsonWriter w;
    w.BeginObject().Key("ok").Bool(problems.empty()).Key("files").Int(static_cast<int64_t>(m.files.size()));
    w.Key("problems").BeginArray();
    for (const auto& p : problems) w.Str(p);
    w.EndArray().EndObject();
    printf("%s\n", w.Take().c_str());
  } else if (problems.empty()) {
    printf("OK: backup %s of relay %s (node %lld), %zu files, %lld envelopes, schema %lld\n", o.dir.c_str(),
           m.relay.c_str(), static_cast<long long>(m.node_id), m.files.size(), static_cast<long long>(m.envelopes),
           static_cast<long long>(m.schema_version));
  } else {
    printf("FAILED: %zu problems\n", problems.size());
  }
}

// chatd.toml's `text`, to live in data dir `data_dir`: if its relay.data_dir does not
// resolve to data_dir (an absolute path elsewhere, or a relative one that assumed another
// layout), *out is the text with that key rewritten to "." (the toml lives in data_dir),
// else "". Returns a note for the operator ("" when nothing needs changing).
std::string PointDataDirAt(const std::string& text, const std::string& data_dir, std::string* out) {
  out->clear();
  const std::string final_path = data_dir + "/" + kTomlFile;
  auto cfg = conf::ParseConfigText(text, final_path);
  if (cfg.ok() && cfg->data_dir == data_dir) return "";
  std::string fixed, table, was;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    size_t b = line.find_first_not_of(" \t");
    std::string_view t = b == std::string::npos ? std::string_view() : std::string_view(line).substr(b);
    if (!t.empty() && t[0] == '[') table = std::string(t.substr(0, t.find(']') + 1));
    if (table == "[relay]" && t.rfind("data_dir", 0) == 0 &&
        t.substr(8).find_first_not_of(" \t") != std::string::npos && t[t.find_first_not_of(" \t", 8)] == '=') {
      was = std::string(t);
      line = "data_dir = \".\"";
    }
    fixed += line + "\n";
  }
  if (was.empty() || !conf::ParseConfigText(fixed, final_path).ok()) {
    return std::string("chatd.toml: relay.data_dir does not point at ") + data_dir +
           " and could not be rewritten: set relay.data_dir = \".\" before starting chatd";
  }
  *out = std::move(fixed);
  return "chatd.toml: " + was + " rewritten to data_dir = \".\" (" + data_dir + ")";
}

// PointDataDirAt on the chatd.toml staged at `path`, rewriting it if needed.
Result<std::string> FixDataDir(const std::string& path, const std::string& data_dir) {
  auto text = ReadSmallFile(path, kMaxTomlBytes);
  if (!text.ok()) return text.status();
  std::string fixed;
  std::string note = PointDataDirAt(*text, data_dir, &fixed);
  if (!fixed.empty()) {
    if (Status s = WriteFileAtomic(path, fixed, kFileMode); !s.ok()) return s;
  }
  return note;
}

// Marks the staged store as restored (meta row Store::kRestoredMeta): a relay started on it
// with peers pinned takes back from them the envelopes it signed after the backup before it
// originates any (relay/recovery.h). The store is still in rollback-journal mode (Snapshot).
Status MarkRestored(const std::string& db_path, const Manifest& m) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(db_path.c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr);
  std::unique_ptr<sqlite3, store::SqliteCloser> db(raw);
  if (rc != SQLITE_OK) return IoError("cannot open " + db_path + ": " + sqlite3_errstr(rc));
  json::JsonWriter note;
  note.BeginObject().Key("restored_at").Time(NowMs()).Key("backup_created_at").Time(m.created_at_ms);
  note.Key("envelopes").Int(m.envelopes).EndObject();
  const std::string value = note.Take();
  sqlite3_stmt* st = nullptr;
  rc = sqlite3_prepare_v2(
      db.get(), "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value", -1,
      &st, nullptr);
  if (rc != SQLITE_OK) return IoError("cannot mark " + db_path + " as restored: " + sqlite3_errmsg(db.get()));
  sqlite3_bind_text(st, 1, store::Store::kRestoredMeta, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return IoError("cannot mark " + db_path + " as restored: " + sqlite3_errmsg(db.get()));
  return Status::Ok();
}

struct RestoreOpts {
  std::string dir, data_dir, key_file;
  bool yes = false, dry_run = false, allow_unauthenticated = false;
};

// Files of a data dir that must not survive a restore: the old store's WAL and shared
// memory, and the search index of the old store (rebuilt at start).
std::vector<std::string> StaleFiles(const std::string& data_dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(data_dir, ec)) {
    std::string name = e.path().filename().string();
    if (name == std::string(kDbFile) + "-wal" || name == std::string(kDbFile) + "-shm" ||
        name == std::string(kDbFile) + "-journal" || name.rfind("search.db", 0) == 0) {
      out.push_back(e.path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

void Restore(Globals& g, const RestoreOpts& o) {
  std::string d = fs::absolute(o.data_dir).lexically_normal().string();
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  conf::Config target;
  target.data_dir = d;
  if (RelayRunning(target)) {
    return Fail(g, Conflict("a relay is running on " + d + " (" + Relay::kPortsFile + "): stop it first"));
  }
  std::error_code ec;
  const bool has_store = fs::exists(d + "/" + kDbFile, ec);
  if (has_store && !o.yes) {
    return Fail(g, Conflict(d + " already holds a store (" + kDbFile + "); pass --yes to replace it"));
  }
  Manifest m;
  std::unique_ptr<crypto::SecretBytes> key;
  if (!OpenBackup(g, o.dir, o.key_file, o.allow_unauthenticated, &m, &key)) return;
  const auto stale = fs::exists(d, ec) ? StaleFiles(d) : std::vector<std::string>();
  if (o.dry_run) {
    auto problems = CheckBackup(o.dir, m, key.get(), "");
    PrintProblems(g, o.dir, problems);
    if (!problems.empty()) return;
    printf("dry run: backup %s verified; nothing written\n", o.dir.c_str());
    printf("would %s %s/%s (%lld envelopes, schema %lld)\n", has_store ? "replace" : "write", d.c_str(), kDbFile,
           static_cast<long long>(m.envelopes), static_cast<long long>(m.schema_version));
    printf("would write %zu files into %s\n", m.files.size(), d.c_str());
    printf(
        "would mark the store as restored (a federated relay takes its own envelopes back from its peers "
        "before it originates any)\n");
    for (const auto& s : stale) printf("would remove %s\n", s.c_str());
    std::string toml, fixed;
    for (const auto& e : m.files) {
      if (e.path != kTomlFile || e.size > kMaxTomlBytes) continue;
      Status s = backup::ReadStoredFile(o.dir, e, key.get(), [&](std::string_view chunk) {
        toml.append(chunk);
        return Status::Ok();
      });
      std::string note = s.ok() ? PointDataDirAt(toml, d, &fixed) : "";
      if (!note.empty()) printf("%s (on restore)\n", note.c_str());
    }
    return;
  }
  fs::create_directories(d, ec);
  if (ec) return Fail(g, IoError("cannot create " + d + ": " + ec.message()));
  TempDir staging;  // inside D: the renames into place stay on one file system
  if (Status s = staging.Make(d + "/.restore-"); !s.ok()) return Fail(g, s);
  auto problems = CheckBackup(o.dir, m, key.get(), staging.path());
  if (!problems.empty()) {
    PrintProblems(g, o.dir, problems);
    fprintf(stderr, "chatctl: nothing restored into %s\n", d.c_str());
    return;
  }
  auto note = FixDataDir(staging.path() + "/" + kTomlFile, d);
  if (!note.ok()) return Fail(g, note.status());
  if (Status s = MarkRestored(staging.path() + "/" + kDbFile, m); !s.ok()) return Fail(g, s);
  // Blobs and the small files first, then the stale files go, the store last.
  std::vector<std::string> order;
  for (const auto& e : m.files) {
    if (e.path != kDbFile) order.push_back(e.path);
  }
  auto place = [&](const std::string& rel) -> Status {
    fs::path dst = fs::path(d) / rel;
    std::error_code ec2;
    fs::create_directories(dst.parent_path(), ec2);
    if (ec2) return IoError("cannot create " + dst.parent_path().string() + ": " + ec2.message());
    if (rename((staging.path() + "/" + rel).c_str(), dst.c_str()) != 0) {
      return IoError("cannot move " + rel + " into " + d + ": " + strerror(errno));
    }
    return Status::Ok();
  };
  for (const auto& rel : order) {
    if (Status s = place(rel); !s.ok()) return Fail(g, s);
  }
  for (const auto& s : stale) {
    if (!fs::remove(s, ec) && ec) return Fail(g, IoError("cannot remove " + s + ": " + ec.message()));
  }
  if (Status s = place(kDbFile); !s.ok()) return Fail(g, s);
  (void)SyncDir(d);
  if (g.output == "json") {
    json::JsonWriter w;
    w.BeginObject().Key("data_dir").Str(d).Key("files").Int(static_cast<int64_t>(m.files.size()));
    w.Key("envelopes").Int(m.envelopes).Key("removed").BeginArray();
    for (const auto& s : stale) w.Str(s);
    w.EndArray().Key("note").StrOrNull(*note).EndObject();
    printf("%s\n", w.Take().c_str());
    return;
  }
  for (const auto& s : stale) printf("removed %s\n", s.c_str());
  if (!note->empty()) printf("%s\n", note->c_str());
  printf("restored %zu files into %s: %lld envelopes, schema %lld; start it with chatd --config %s/%s\n",
         m.files.size(), d.c_str(), static_cast<long long>(m.envelopes), static_cast<long long>(m.schema_version),
         d.c_str(), kTomlFile);
}

}  // namespace

void RegisterBackup(CLI::App& app, Globals& g) {
  CLI::App* b = app.add_subcommand("backup", "backups of the data directory: create, verify, restore, keygen");
  b->require_subcommand(1);

  auto co = std::make_shared<CreateOpts>();
  CLI::App* create = b->add_subcommand("create", "back up the relay (it may be running) into a new directory");
  create->add_option("--out", co->out, "the backup directory (must not exist, or be empty)")->required();
  create->add_option("--key-file", co->key_file, "encrypt every file with this key (see backup keygen)");
  create->callback([co, &g] { Create(g, *co); });

  auto vo = std::make_shared<VerifyOpts>();
  CLI::App* verify = b->add_subcommand("verify", "check a backup offline: manifest, sizes, sha256s, the store");
  verify->add_option("dir", vo->dir, "the backup directory")->required();
  verify->add_option("--key-file", vo->key_file, "the key of an encrypted backup");
  verify->add_flag("--allow-unauthenticated", vo->allow_unauthenticated,
                   "accept an encrypted backup without manifest.mac (made before chatctl wrote one)");
  verify->callback([vo, &g] { Verify(g, *vo); });

  auto ro = std::make_shared<RestoreOpts>();
  CLI::App* restore = b->add_subcommand("restore", "verify a backup, then write it into a data directory (offline)");
  restore->add_option("dir", ro->dir, "the backup directory")->required();
  restore->add_option("--data-dir", ro->data_dir, "the data directory to restore into")->required();
  restore->add_option("--key-file", ro->key_file, "the key of an encrypted backup");
  restore->add_flag("--allow-unauthenticated", ro->allow_unauthenticated,
                    "accept an encrypted backup without manifest.mac (made before chatctl wrote one)");
  restore->add_flag("--yes", ro->yes, "replace the store already in --data-dir");
  restore->add_flag("--dry-run", ro->dry_run, "verify and say what would be written; write nothing");
  restore->callback([ro, &g] { Restore(g, *ro); });

  auto key_out = std::make_shared<std::string>();
  CLI::App* keygen = b->add_subcommand("keygen", "write a new random backup key (64 hex digits, mode 0600)");
  keygen->add_option("--out", *key_out, "the key file to create (not replaced if it exists)")->required();
  keygen->callback([key_out, &g] {
    if (Status s = backup::WriteNewKey(*key_out); !s.ok()) return Fail(g, s);
    printf("backup key written to %s\n", key_out->c_str());
  });
}

}  // namespace chatd::cli
