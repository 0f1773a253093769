// Running a relay: health endpoints, the gateway URL, `chatctl init` refusing to clobber a
// relay, graceful shutdown (SIGTERM/SIGINT → close 1001, exit 0, data kept) and config
// errors that name file, line and key.
#include <signal.h>

#include <fstream>

#include "tests/integration/harness.h"

namespace chatd::test {

TEST_CASE("health endpoints, ports file and the gateway URL", "[integration][health]") {
  auto relay = StartRelay();
  HttpRequest live;
  live.path = "/livez";
  CHECK(HttpCall(relay->api(), live).status == 200);
  HttpRequest ready;
  ready.path = "/readyz";
  CHECK(HttpCall(relay->api(), ready).status == 200);
  CHECK(relay->reported_pid() == relay->pid());

  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  HttpResponse gw = ApiGet(relay->api(), "/gateway", alice.access_token);
  INFO(gw.Describe());
  REQUIRE(gw.status == 200);
  REQUIRE(gw.success());
  std::string url = StrOf(Get(gw.data(), "url"));
  CHECK(url == "ws://127.0.0.1:" + std::to_string(relay->gateway().port) + "/ws");
  // The URL works: connect where it says and authenticate.
  REQUIRE(url.rfind("ws://", 0) == 0);
  std::string rest = url.substr(5);
  size_t slash = rest.find('/');
  HostPort hp = ParseHostPort(rest.substr(0, slash));
  std::string path = slash == std::string::npos ? "/" : rest.substr(slash);
  WsClient c;
  REQUIRE(c.Connect(hp.host, hp.port, path).ok());
  WsSession s(std::move(c));
  SEND(s, JsonBuilder().Add("type", "auth").Add("token", alice.access_token).str());
  auto ok = s.WaitForAny({"auth_ok", "error"}, kEventMs);
  REQUIRE(ok.ok());
  CHECK(ok->type() == "auth_ok");
  CHECK(ok->Str("user_id") == alice.user_id);
  CHECK(ok->Str("relay") == "eu1");
}

TEST_CASE("the ports file names every listener with its bound port", "[integration][health]") {
  auto relay = StartRelay();
  INFO(ReadFile(relay->ports_path()));
  CHECK(relay->api().port != 0);
  CHECK(relay->gateway().port != 0);
  CHECK(relay->admin().port != 0);
  CHECK(relay->federation().port != 0);
  // Four distinct sockets.
  std::set<int> ports = {relay->api().port, relay->gateway().port, relay->admin().port,
                         relay->federation().port};
  CHECK(ports.size() == 4);
}

TEST_CASE("stderr is JSON lines", "[integration][health]") {
  auto relay = StartRelay();
  MUST(RegisterUser(*relay, "alice"));
  std::string log = ReadFile(relay->log_path());
  REQUIRE_FALSE(log.empty());
  size_t pos = 0, lines = 0;
  while (pos < log.size()) {
    size_t nl = log.find('\n', pos);
    if (nl == std::string::npos) nl = log.size();
    std::string line = log.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) continue;
    ++lines;
    INFO("line " << lines << ": " << line);
    auto doc = Json::Parse(line);
    REQUIRE(doc.ok());
    CHECK(doc->IsObject());
    CHECK(IsRfc3339Ms((*doc)["ts"]));
    CHECK_FALSE(doc->Str("level").empty());
    CHECK_FALSE(doc->Str("msg").empty());
  }
  CHECK(lines > 0);
}

TEST_CASE("chatctl init refuses a directory that already holds a relay", "[integration][health]") {
  auto relay = StartRelay();
  std::string config = ReadFile(relay->config_path());
  std::string key = ReadFile(relay->dir() + "/relay.key");
  REQUIRE_FALSE(config.empty());
  REQUIRE_FALSE(key.empty());
  CommandResult r = RunCommand({CHATCTL_BIN, "init", "--data-dir", relay->dir(), "--relay", "eu9",
                                "--node-id", "9", "--api", "127.0.0.1:0", "--gateway", "127.0.0.1:0",
                                "--federation", "127.0.0.1:0", "--admin", "127.0.0.1:0"});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code != 0);
  CHECK_FALSE(r.err.empty());
  CHECK(ReadFile(relay->config_path()) == config);
  CHECK(ReadFile(relay->dir() + "/relay.key") == key);
}

TEST_CASE("SIGTERM drains: sessions get 1001, exit status 0, data survives", "[integration][lifecycle]") {
  auto relay = StartRelay();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  std::string chat = MUST(CreateChat(relay->api(), alice.access_token, "direct", {bob.user_id}));
  std::string m1 = MUST(PostText(relay->api(), alice.access_token, chat, "before the restart")).Str("message_id");
  WsSession a = MUST(Auth(*relay, alice.access_token));
  WsSession b = MUST(Auth(*relay, bob.access_token));
  // REST reads open reader connections, which attach the search index too.
  (void)MUST(SearchIds(relay->api(), alice.access_token, "restart"));
  (void)MUST(History(relay->api(), bob.access_token, chat));

  REQUIRE(relay->Signal(SIGTERM));
  for (WsSession* s : {&a, &b}) {
    // Drain whatever was queued; the session must end with a close frame, code 1001.
    Result<Json> ev = Json();
    do {
      ev = s->Next(10000);
    } while (ev.ok());
    INFO(ev.status().message());
    CHECK(s->ws().last_error() == WsError::kClosed);
    CHECK(s->ws().last_close_code() == 1001);
    CHECK_FALSE(s->ws().last_close_reason().empty());
  }
  auto status = relay->WaitExit(15000);
  REQUIRE(status.ok());
  CHECK(*status == 0);
  CHECK_FALSE(FileExists(relay->ports_path()));
  // A clean stop folds every WAL back into its database and removes it.
  for (const char* f : {"chatd.db-wal", "chatd.db-shm", "search.db-wal", "search.db-shm"}) {
    INFO(f);
    CHECK_FALSE(FileExists(relay->dir() + "/" + f));
  }

  // Same data dir, new process.
  MUST(relay->Start());
  HttpResponse login = ApiPost(relay->api(), "/auth/login",
                               JsonBuilder().Add("username", "alice").Add("password", alice.password).str());
  CHECK(login.status == 200);
  auto hist = MUST(History(relay->api(), bob.access_token, chat));  // old token still valid
  REQUIRE(hist.size() == 1);
  CHECK(hist[0].Str("message_id") == m1);
  CHECK(hist[0].Str("content") == "before the restart");
  // Ids keep growing across the restart.
  std::string m2 = MUST(PostText(relay->api(), bob.access_token, chat, "after")).Str("message_id");
  CHECK(IdNum(m2) > IdNum(m1));
  WsSession again = MUST(Auth(*relay, alice.access_token));
  CHECK(again.user_id == alice.user_id);
}

TEST_CASE("SIGINT also drains and exits 0", "[integration][lifecycle]") {
  auto relay = StartRelay();
  REQUIRE(relay->Signal(SIGINT));
  auto status = relay->WaitExit(15000);
  REQUIRE(status.ok());
  CHECK(*status == 0);
  CHECK_FALSE(FileExists(relay->ports_path()));
}

TEST_CASE("a config error stops chatd with file, line and key on stderr", "[integration][lifecycle]") {
  RelayProcess relay(Options());
  MUST(relay.Init());
  int line = 0;
  std::string key;
  SECTION("wrong type") {
    key = "max_group_members";
    line = MUST(relay.SetConfig("limits", key, "\"lots\""));
  }
  SECTION("out of range") {
    key = "max_group_members";
    line = MUST(relay.SetConfig("limits", key, "1"));
  }
  SECTION("unknown key") {
    key = "max_group_memberz";
    line = MUST(relay.SetConfig("limits", key, "5"));
  }
  SECTION("TOML syntax") {
    std::string text = ReadFile(relay.config_path());
    if (!text.empty() && text.back() != '\n') text += '\n';
    line = static_cast<int>(std::count(text.begin(), text.end(), '\n')) + 1;
    text += "this is = = not toml\n";
    std::ofstream(relay.config_path(), std::ios::trunc) << text;
  }
  MUST(relay.Spawn());
  auto status = relay.WaitExit(15000);
  REQUIRE(status.ok());
  std::string err = ReadFile(relay.log_path());
  INFO("line " << line << ", stderr:\n" << err);
  CHECK(*status != 0);
  CHECK(err.find("chatd.toml:" + std::to_string(line)) != std::string::npos);
  if (!key.empty()) CHECK(err.find(key) != std::string::npos);
  CHECK_FALSE(FileExists(relay.ports_path()));
}

}  // namespace chatd::test
