// Running relays as the federation scenarios see them. See bench_fed_relay.h.
#include "cli/bench_fed_relay.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "base/json.h"
#include "conf/config.h"
#include "crypto/keys.h"
#include "relay/relay.h"

extern char** environ;

namespace chatd::cli::bench {

namespace {

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string Field(const json::Value& v, const char* key) {
  auto s = json::GetString(v, key, 256);
  return s.ok() ? std::string(*s) : std::string();
}

}  // namespace

Result<FedRelay> OpenRelay(const std::string& dir) {
  FedRelay r;
  r.dir = dir;
  auto cfg = conf::LoadConfig(dir + "/chatd.toml");
  if (!cfg.ok()) return Status(cfg.status().code(), dir + ": " + cfg.status().message());
  r.name = cfg->relay_name;
  auto ports = ReadSmallFile(dir + "/" + Relay::kPortsFile, 4096);
  if (!ports.ok()) return Status(Code::kUnavailable, "no running relay in " + dir + ": " + ports.status().message());
  json::Doc doc;
  if (!json::Parse(*ports, &doc).ok()) return Internal(dir + "/chatd.ports.json is malformed");
  r.api = Field(doc, "api");
  r.gateway = Field(doc, "gateway");
  r.federation = Field(doc, "federation");
  r.admin = Field(doc, "admin");
  auto pid = json::GetInt(doc, "pid", 1, INT32_MAX);
  if (pid.ok()) r.pid = static_cast<int>(*pid);
  if (r.admin.empty() || r.federation.empty()) return Internal(dir + "/chatd.ports.json lacks admin or federation");
  auto token = ReadSmallFile(dir + "/" + Relay::kAdminTokenFile, 1024);
  if (!token.ok()) return token.status();
  r.admin_token = Trim(*token);
  auto key = crypto::KeyPair::LoadFile(dir + "/" + Relay::kKeyFile);
  if (!key.ok()) return key.status();
  r.public_key = key->public_key().ToString();
  r.client = std::make_unique<httplib::Client>("http://" + r.admin);
  r.client->set_keep_alive(true);
  r.client->set_connection_timeout(3, 0);
  r.client->set_read_timeout(10, 0);
  return r;
}

Result<FedStatus> PollFederation(FedRelay& r) {
  httplib::Headers h = {{"Authorization", "Bearer " + r.admin_token}};
  auto res = r.client->Get("/admin/v1/federation", h);
  if (!res) return Status(Code::kUnavailable, r.name + ": admin API unreachable at " + r.admin);
  if (res->status != 200) return Internal(r.name + ": /admin/v1/federation: HTTP " + std::to_string(res->status));
  json::Doc doc;
  if (!json::Parse(res->body, &doc).ok() || !doc.HasMember("data") || !doc["data"].IsObject()) {
    return Internal(r.name + ": /admin/v1/federation: malformed answer");
  }
  const json::Value& d = doc["data"];
  FedStatus st;
  if (d.HasMember("vector") && d["vector"].IsObject()) {
    for (auto m = d["vector"].MemberBegin(); m != d["vector"].MemberEnd(); ++m) {
      if (m->value.IsUint64())
        st.vector[std::string(m->name.GetString(), m->name.GetStringLength())] = m->value.GetUint64();
    }
  }
  if (d.HasMember("peers") && d["peers"].IsArray()) {
    for (const auto& p : d["peers"].GetArray()) {
      if (p.IsObject() && p.HasMember("name") && p["name"].IsString() && p.HasMember("connected")) {
        st.connected[p["name"].GetString()] = p["connected"].IsTrue();
      }
    }
  }
  return st;
}

uint64_t Missing(const Vector& have, const Vector& want, const std::string& skip) {
  uint64_t n = 0;
  for (const auto& [o, s] : want) {
    if (o == skip) continue;
    auto it = have.find(o);
    uint64_t h = it == have.end() ? 0 : it->second;
    if (s > h) n += s - h;
  }
  return n;
}

uint64_t Total(const Vector& v) {
  uint64_t n = 0;
  for (const auto& [o, s] : v) n += s;
  return n;
}

void Merge(Vector* into, const Vector& v) {
  for (const auto& [o, s] : v) (*into)[o] = std::max((*into)[o], s);
}

std::string VectorText(const Vector& v) {
  std::string out = "{";
  for (const auto& [o, s] : v) out += (out.size() > 1 ? "," : "") + o + ":" + std::to_string(s);
  return out + "}";
}

Status RunSelf(const std::vector<std::string>& args) {
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return Internal("cannot find this program (/proc/self/exe)");
  exe[n] = '\0';
  std::vector<std::string> all = {exe};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);  // keep our stdout for the report
  pid_t pid = 0;
  int rc = posix_spawn(&pid, exe, &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return Internal(std::string("cannot run chatctl: ") + strerror(rc));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string cmd;
    for (size_t i = 1; i < all.size(); ++i) cmd += (i > 1 ? " " : "") + all[i];
    return Internal("`chatctl " + cmd + "` failed");
  }
  return Status::Ok();
}

Status PinPeer(const FedRelay& r, const FedRelay& peer, bool with_url) {
  std::vector<std::string> args = {"-c", r.dir + "/chatd.toml", "peers", "add", peer.name};
  if (with_url) {
    args.push_back("--url");
    args.push_back("ws://" + peer.federation);
  }
  args.push_back("--key");
  args.push_back(peer.public_key);
  return RunSelf(args);
}

int64_t RealNs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace chatd::cli::bench
