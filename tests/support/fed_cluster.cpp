#include "tests/support/fed_cluster.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>

#include "tests/support/http.h"

namespace chatd::test {

namespace {

// Whether `port` on 127.0.0.1 can be bound right now.
bool Bindable(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// The first port of the kernel's ephemeral range (outgoing connections take theirs there).
int EphemeralLow() {
  std::ifstream f("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 0, high = 0;
  if (f >> low >> high && low > 1024) return low;
  return 32768;
}

}  // namespace

int PickFreePort() {
  // Below the ephemeral range: a port bound there later only by a test that picked the same
  // number, never by some process's outgoing connection (which with ctest -j2 took the
  // number between this pick and the relay's bind, now and then). Random, so that tests
  // running at once rarely try the same ones.
  static std::mutex mu;
  static std::mt19937 rng(static_cast<uint32_t>(::getpid()) * 2654435761u ^
                          static_cast<uint32_t>(std::random_device{}()));
  const int high = EphemeralLow() - 1, low = std::max(1025, high - 12000);
  std::lock_guard<std::mutex> lock(mu);
  for (int i = 0; i < 200; ++i) {
    const int port = std::uniform_int_distribution<int>(low, high)(rng);
    if (Bindable(port)) return port;
  }
  return 0;
}

RelayOptions FedOptions(RelayOptions opts, int port) {
  if (port == 0) port = PickFreePort();
  opts.config.push_back({"listen", "federation", "\"127.0.0.1:" + std::to_string(port) + "\""});
  return opts;
}

int FedPortOf(const RelayOptions& opts) {
  for (const auto& e : opts.config) {
    if (e.table == "listen" && e.key == "federation") {
      auto colon = e.value_literal.rfind(':');
      if (colon != std::string::npos) return std::atoi(e.value_literal.c_str() + colon + 1);
    }
  }
  return 0;
}

CommandResult Chatctl(const std::string& chatctl, const RelayProcess& relay,
                      const std::vector<std::string>& args, int timeout_ms) {
  std::vector<std::string> argv = {chatctl, "-c", relay.config_path()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, timeout_ms);
}

namespace {
std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  size_t b = s.find_first_not_of(" \n\r\t");
  return b == std::string::npos ? "" : s.substr(b);
}
Status CmdStatus(const CommandResult& r, const std::string& what) {
  if (r.exit_code == 0) return Status::Ok();
  return Internal(what + " exited " + std::to_string(r.exit_code) + "; stderr: " + r.err + " stdout: " + r.out);
}
}  // namespace

Result<std::string> PublicKeyOf(const std::string& chatctl, const RelayProcess& relay) {
  CommandResult r = Chatctl(chatctl, relay, {"keys", "show"});
  if (Status s = CmdStatus(r, "chatctl keys show"); !s.ok()) return s;
  std::string key = Trim(r.out);
  if (key.rfind("ed25519:", 0) != 0) return Internal("chatctl keys show printed '" + r.out + "'");
  return key;
}

Status PeerAdd(const std::string& chatctl, const RelayProcess& relay, const std::string& name,
               const std::string& url, const std::string& key) {
  std::vector<std::string> args = {"peers", "add", name};
  if (!url.empty()) {
    args.push_back("--url");
    args.push_back(url);
  }
  args.push_back("--key");
  args.push_back(key);
  return CmdStatus(Chatctl(chatctl, relay, args), "chatctl peers add " + name + " (on " + relay.name() + ")");
}

Status PeerRemove(const std::string& chatctl, const RelayProcess& relay, const std::string& name) {
  return CmdStatus(Chatctl(chatctl, relay, {"peers", "remove", name}),
                   "chatctl peers remove " + name + " (on " + relay.name() + ")");
}

Result<Json> FederationStatus(const std::string& chatctl, const RelayProcess& relay) {
  CommandResult r = Chatctl(chatctl, relay, {"-o", "json", "federation", "status"});
  if (Status s = CmdStatus(r, "chatctl federation status"); !s.ok()) return s;
  auto j = Json::Parse(r.out);
  if (!j.ok()) return Internal("chatctl -o json federation status printed non-JSON: " + r.out);
  return j;
}

std::string FedUrl(const RelayProcess& relay) {
  return "ws://127.0.0.1:" + std::to_string(relay.federation().port);
}

namespace {
Result<HttpResponse> AdminGet(const RelayProcess& relay, const std::string& path) {
  HttpRequest req;
  req.path = path;
  req.bearer = relay.AdminToken();
  req.timeout_ms = 5000;
  HttpResponse r = HttpCall(relay.admin(), req);
  if (r.status != 200 || !r.success()) return Internal("GET " + path + " on " + relay.name() + ": " + r.Describe());
  return r;
}
}  // namespace

Result<AdminStatus> GetAdminStatus(const RelayProcess& relay) {
  auto r = AdminGet(relay, "/admin/v1/status");
  if (!r.ok()) return r.status();
  AdminStatus s;
  const auto& d = r->data();
  s.relay = StrOf(Get(d, "relay"));
  const auto& n = Get(d, "envelopes");
  if (n.IsInt64()) s.envelopes = n.GetInt64();
  const auto& v = Get(d, "vector");
  if (v.IsObject()) {
    for (auto m = v.MemberBegin(); m != v.MemberEnd(); ++m) {
      if (m->value.IsUint64()) s.vector[m->name.GetString()] = m->value.GetUint64();
    }
  }
  s.text = Dump(d);
  return s;
}

Result<Json> GetAdminFederation(const RelayProcess& relay) {
  auto r = AdminGet(relay, "/admin/v1/federation");
  if (!r.ok()) return r.status();
  return Json::FromValue(r->data());
}

// ---- SQLite through dlopen ------------------------------------------------------------

namespace {

struct SqliteApi {
  void* lib = nullptr;
  int (*open_v2)(const char*, void**, int, const char*) = nullptr;
  int (*close)(void*) = nullptr;
  int (*prepare_v2)(void*, const char*, int, void**, const char**) = nullptr;
  int (*step)(void*) = nullptr;
  int (*finalize)(void*) = nullptr;
  long long (*column_int64)(void*, int) = nullptr;
  const unsigned char* (*column_text)(void*, int) = nullptr;
  const void* (*column_blob)(void*, int) = nullptr;
  int (*column_bytes)(void*, int) = nullptr;
  const char* (*errmsg)(void*) = nullptr;
  int (*busy_timeout)(void*, int) = nullptr;
  int (*exec)(void*, const char*, void*, void*, char**) = nullptr;
  std::string error;
};

const SqliteApi& Sqlite() {
  static SqliteApi api;
  static std::once_flag once;
  std::call_once(once, [] {
    api.lib = ::dlopen("libsqlite3.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!api.lib) {
      api.error = std::string("dlopen libsqlite3.so.0: ") + ::dlerror();
      return;
    }
    auto sym = [](const char* name) { return ::dlsym(api.lib, name); };
    api.open_v2 = reinterpret_cast<decltype(api.open_v2)>(sym("sqlite3_open_v2"));
    api.close = reinterpret_cast<decltype(api.close)>(sym("sqlite3_close"));
    api.prepare_v2 = reinterpret_cast<decltype(api.prepare_v2)>(sym("sqlite3_prepare_v2"));
    api.step = reinterpret_cast<decltype(api.step)>(sym("sqlite3_step"));
    api.finalize = reinterpret_cast<decltype(api.finalize)>(sym("sqlite3_finalize"));
    api.column_int64 = reinterpret_cast<decltype(api.column_int64)>(sym("sqlite3_column_int64"));
    api.column_text = reinterpret_cast<decltype(api.column_text)>(sym("sqlite3_column_text"));
    api.column_blob = reinterpret_cast<decltype(api.column_blob)>(sym("sqlite3_column_blob"));
    api.column_bytes = reinterpret_cast<decltype(api.column_bytes)>(sym("sqlite3_column_bytes"));
    api.errmsg = reinterpret_cast<decltype(api.errmsg)>(sym("sqlite3_errmsg"));
    api.busy_timeout = reinterpret_cast<decltype(api.busy_timeout)>(sym("sqlite3_busy_timeout"));
    api.exec = reinterpret_cast<decltype(api.exec)>(sym("sqlite3_exec"));
    if (!api.open_v2 || !api.close || !api.prepare_v2 || !api.step || !api.finalize || !api.column_int64 ||
        !api.column_text || !api.column_blob || !api.column_bytes || !api.errmsg || !api.busy_timeout || !api.exec) {
      api.error = "libsqlite3.so.0 lacks a symbol";
    }
  });
  return api;
}

constexpr int kSqliteOpenReadOnly = 0x00000001;
constexpr int kSqliteRow = 100;
constexpr int kSqliteDone = 101;

}  // namespace

Status ExecSql(const std::string& db_path, const std::string& sql) {
  const SqliteApi& s = Sqlite();
  if (!s.error.empty()) return Internal(s.error);
  void* db = nullptr;
  constexpr int kSqliteOpenReadWrite = 0x00000002;
  if (s.open_v2(db_path.c_str(), &db, kSqliteOpenReadWrite, nullptr) != 0) {
    std::string e = db ? s.errmsg(db) : "out of memory";
    if (db) s.close(db);
    return IoError("open " + db_path + ": " + e);
  }
  s.busy_timeout(db, 5000);
  Status out;
  if (s.exec(db, sql.c_str(), nullptr, nullptr, nullptr) != 0)
    out = IoError(sql + " on " + db_path + ": " + s.errmsg(db));
  s.close(db);
  return out;
}

Result<std::vector<LogRow>> ReadEnvelopeLog(const std::string& db_path) {
  const SqliteApi& s = Sqlite();
  if (!s.error.empty()) return Internal(s.error);
  void* db = nullptr;
  if (s.open_v2(db_path.c_str(), &db, kSqliteOpenReadOnly, nullptr) != 0) {
    std::string e = db ? s.errmsg(db) : "out of memory";
    if (db) s.close(db);
    return IoError("open " + db_path + ": " + e);
  }
  s.busy_timeout(db, 5000);
  void* st = nullptr;
  const char* sql = "SELECT pos, origin, seq, id, chat_id, kind, header_hash, body FROM envelopes ORDER BY pos";
  if (s.prepare_v2(db, sql, -1, &st, nullptr) != 0) {
    std::string e = s.errmsg(db);
    s.close(db);
    return IoError("prepare on " + db_path + ": " + e);
  }
  std::vector<LogRow> rows;
  int rc;
  static const char* kHex = "0123456789abcdef";
  while ((rc = s.step(st)) == kSqliteRow) {
    LogRow r;
    r.pos = s.column_int64(st, 0);
    const unsigned char* o = s.column_text(st, 1);
    r.origin = o ? reinterpret_cast<const char*>(o) : "";
    r.seq = static_cast<uint64_t>(s.column_int64(st, 2));
    r.id = static_cast<uint64_t>(s.column_int64(st, 3));
    r.chat_id = static_cast<uint64_t>(s.column_int64(st, 4));
    r.kind = static_cast<int>(s.column_int64(st, 5));
    const auto* h = static_cast<const unsigned char*>(s.column_blob(st, 6));
    int n = s.column_bytes(st, 6);
    for (int i = 0; i < n && h; ++i) {
      r.header_hash_hex += kHex[h[i] >> 4];
      r.header_hash_hex += kHex[h[i] & 15];
    }
    const auto* b = static_cast<const char*>(s.column_blob(st, 7));
    if (b) r.body.assign(b, static_cast<size_t>(s.column_bytes(st, 7)));
    rows.push_back(std::move(r));
  }
  std::string e = rc == kSqliteDone ? "" : s.errmsg(db);
  s.finalize(st);
  s.close(db);
  if (!e.empty()) return IoError("read " + db_path + ": " + e);
  return rows;
}

std::set<std::tuple<std::string, uint64_t, std::string>> LogKeys(const std::vector<LogRow>& rows) {
  std::set<std::tuple<std::string, uint64_t, std::string>> out;
  for (const auto& r : rows) out.emplace(r.origin, r.seq, r.header_hash_hex);
  return out;
}

bool WaitConverged(const std::vector<const RelayProcess*>& relays, int timeout_ms, std::string* why,
                   int64_t min_envelopes) {
  std::string last;
  bool ok = WaitFor(
      [&] {
        std::vector<AdminStatus> all;
        for (const RelayProcess* r : relays) {
          auto st = GetAdminStatus(*r);
          if (!st.ok()) {
            last = st.status().message();
            return false;
          }
          all.push_back(std::move(st).value());
        }
        std::ostringstream d;
        bool same = true;
        for (const auto& s : all) {
          d << s.relay << ": " << s.envelopes << " envelopes " << s.text << "; ";
          if (s.vector != all[0].vector || s.envelopes != all[0].envelopes || s.envelopes < min_envelopes) same = false;
        }
        last = d.str();
        return same;
      },
      timeout_ms, 50);
  if (why) *why = last;
  return ok;
}

bool WaitLinked(const std::string& chatctl, const RelayProcess& relay, const std::string& peer,
                int timeout_ms) {
  (void)chatctl;
  return WaitFor(
      [&] {
        auto f = GetAdminFederation(relay);
        if (!f.ok()) return false;
        const auto& peers = (*f)["peers"];
        if (!peers.IsArray()) return false;
        for (const auto& p : peers.GetArray()) {
          if (StrOf(Get(p, "name")) == peer && Get(p, "connected").IsBool() && Get(p, "connected").GetBool()) {
            return true;
          }
        }
        return false;
      },
      timeout_ms, 50);
}

Result<int64_t> MetricValue(const RelayProcess& relay, const std::string& name) {
  HttpRequest req;
  req.path = "/metrics";
  req.timeout_ms = 5000;
  HttpResponse r = HttpCall(relay.api(), req);
  if (r.status != 200) return Internal("GET /metrics: " + r.Describe());
  std::istringstream in(r.body);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + " ", 0) == 0) return static_cast<int64_t>(std::stoll(line.substr(name.size() + 1)));
  }
  return NotFound("no metric " + name + " in /metrics");
}

int CountLogLines(const RelayProcess& relay, const std::string& needle) {
  std::string text = ReadFile(relay.log_path());
  int n = 0;
  size_t pos = 0;
  while ((pos = text.find(needle, pos)) != std::string::npos) {
    ++n;
    pos += needle.size();
  }
  return n;
}

bool WaitLogLines(const RelayProcess& relay, const std::string& needle, int count, int timeout_ms) {
  return WaitFor([&] { return CountLogLines(relay, needle) >= count; }, timeout_ms, 20);
}

}  // namespace chatd::test
