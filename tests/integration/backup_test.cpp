// Backups (chatctl backup create|verify|restore|keygen, chatctl(1) BACKUP): a backup taken
// while the relay runs holds exactly what was committed before it, verify finds a flipped
// byte and names the file, restore refuses what it must and gives back a relay whose
// history and logins are those of the backup, encrypted or not. (A federated relay's
// restore: federation_restore_test.cpp.)
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "tests/integration/harness.h"
#include "tests/support/fed_cluster.h"

namespace chatd::test {
namespace {

namespace fs = std::filesystem;

// A fresh empty directory under /tmp, removed with everything in it at scope exit.
struct ScratchDir {
  std::string path;
  ScratchDir() {
    std::string t = (fs::temp_directory_path() / "chatd-backup-test-XXXXXX").string();
    REQUIRE(mkdtemp(t.data()) != nullptr);
    path = t;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!getenv("CHATD_KEEP_TEST_DIRS")) fs::remove_all(path, ec);
  }
};

// `chatctl ARGS...` with no relay config (verify, restore and keygen need none).
CommandResult Ctl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {CHATCTL_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, 60000);
}

void FlipByte(const std::string& path, std::streamoff at) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f);
  f.seekg(at);
  char c = 0;
  f.get(c);
  f.seekp(at);
  f.put(static_cast<char>(c ^ 0x01));
  REQUIRE(f);
}

// The one blob file under DIR/blobs (its path relative to DIR).
std::string OnlyBlob(const std::string& dir) {
  std::vector<std::string> found;
  for (const auto& e : fs::recursive_directory_iterator(dir + "/blobs")) {
    if (e.is_regular_file()) found.push_back(fs::path(e.path()).lexically_relative(dir).string());
  }
  REQUIRE(found.size() == 1);
  return found[0];
}

int ModeOf(const std::string& path) {
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  return static_cast<int>(st.st_mode & 0777);
}

std::set<std::string> HistoryIds(const RelayProcess& relay, const std::string& token, const std::string& chat) {
  auto msgs = MUST(History(relay.api(), token, chat));
  auto ids = IdsOf(msgs);
  return {ids.begin(), ids.end()};
}

// A relay where alice and bob share a chat holding `before` messages and one uploaded file.
struct Fixture {
  std::unique_ptr<RelayProcess> relay;
  TestUser alice, bob;
  std::string chat;
  std::set<std::string> before;
};
Fixture Setup() {
  Fixture f;
  f.relay = StartRelay();
  f.alice = MUST(RegisterUser(*f.relay, "alice"));
  f.bob = MUST(RegisterUser(*f.relay, "bob"));
  f.chat = MUST(CreateChat(f.relay->api(), f.alice.access_token, "direct", {f.bob.user_id}));
  for (int i = 0; i < 5; ++i) {
    Json m = MUST(PostText(f.relay->api(), f.alice.access_token, f.chat, "before " + std::to_string(i)));
    f.before.insert(m.Str("message_id"));
  }
  HttpResponse up = Upload(*f.relay, f.alice.access_token, f.chat, "notes.txt", "text/plain", "backed-up bytes");
  INFO(up.Describe());
  REQUIRE(up.status == 201);
  return f;
}

// Restores `backup` into a new relay's dir (over its fresh store, with --yes) and starts it.
std::unique_ptr<RelayProcess> RestoreAndStart(const std::string& backup, const std::vector<std::string>& extra) {
  auto r = std::make_unique<RelayProcess>(Options());
  MUST(r->Init());
  std::vector<std::string> args = {"backup", "restore", backup, "--data-dir", r->dir()};
  args.insert(args.end(), extra.begin(), extra.end());
  CommandResult no = Ctl(args);
  INFO(no.err);
  CHECK(no.exit_code == 1);  // init made a store there
  CHECK(no.err.find("--yes") != std::string::npos);
  { std::ofstream(r->dir() + "/search.db") << "stale index"; }
  args.push_back("--yes");
  CommandResult yes = Ctl(args);
  INFO(yes.out << yes.err);
  REQUIRE(yes.exit_code == 0);
  CHECK_FALSE(FileExists(r->dir() + "/search.db"));
  MUST(r->Start());
  return r;
}

}  // namespace

TEST_CASE("backup: create while running, verify, tampering named, restore gives the backed-up state",
          "[integration][backup]") {
  Fixture f = Setup();
  ScratchDir scratch;
  const std::string out = scratch.path + "/b1";

  CommandResult made = Chatctl(CHATCTL_BIN, *f.relay, {"-o", "json", "backup", "create", "--out", out});
  INFO(made.out << made.err);
  REQUIRE(made.exit_code == 0);
  Json summary = MUST(Json::Parse(made.out));
  REQUIRE(summary["envelopes"].IsInt64());
  CHECK(summary["envelopes"].GetInt64() > 0);
  CHECK(Dump(summary["blobs"]) == "1");
  // Written after the backup: must not come back.
  MUST(PostText(f.relay->api(), f.bob.access_token, f.chat, "after the backup"));

  CHECK(ModeOf(out + "/relay.key") == 0600);
  CHECK(ModeOf(out + "/admin.token") == 0600);
  CHECK_FALSE(FileExists(out + "/search.db"));
  std::string manifest = ReadFile(out + "/manifest.json");
  CHECK(manifest.find(f.relay->AdminToken()) == std::string::npos);
  CHECK(manifest.find("\"schema_version\"") != std::string::npos);

  CommandResult ok = Ctl({"backup", "verify", out});
  INFO(ok.out << ok.err);
  CHECK(ok.exit_code == 0);
  CHECK(ok.out.find("OK") == 0);

  SECTION("a non-empty --out is refused and left alone") {
    CommandResult again = Chatctl(CHATCTL_BIN, *f.relay, {"backup", "create", "--out", out});
    CHECK(again.exit_code == 1);
    CHECK(again.err.find("not empty") != std::string::npos);
    CHECK(ReadFile(out + "/manifest.json") == manifest);
  }

  SECTION("a flipped byte in a blob or in chatd.db fails verify, naming the file") {
    const std::string blob = OnlyBlob(out);
    for (const std::string& victim : {blob, std::string("chatd.db")}) {
      const std::string copy = scratch.path + "/tampered-" + std::to_string(victim.size());
      fs::copy(out, copy, fs::copy_options::recursive);
      FlipByte(copy + "/" + victim, victim == "chatd.db" ? 5000 : 3);
      CommandResult bad = Ctl({"backup", "verify", copy});
      INFO(victim << ": " << bad.out << bad.err);
      CHECK(bad.exit_code == 1);
      CHECK(bad.err.find(victim) != std::string::npos);
    }
  }

  SECTION("restore into an empty dir writes every file; --dry-run writes nothing") {
    const std::string d = scratch.path + "/restored";
    fs::create_directory(d);
    CommandResult dry = Ctl({"backup", "restore", out, "--data-dir", d, "--dry-run"});
    INFO(dry.out << dry.err);
    CHECK(dry.exit_code == 0);
    CHECK(fs::is_empty(d));
    CommandResult r = Ctl({"backup", "restore", out, "--data-dir", d});
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(FileExists(d + "/chatd.db"));
    CHECK(ReadFile(d + "/" + OnlyBlob(d)) == "backed-up bytes");
    CHECK(ModeOf(d + "/relay.key") == 0600);
    CHECK(ReadFile(d + "/admin.token") == ReadFile(f.relay->dir() + "/admin.token"));
  }

  SECTION("a blob whose content is not its name fails create, naming it, and leaves nothing") {
    const std::string blob = OnlyBlob(f.relay->dir());
    FlipByte(f.relay->dir() + "/" + blob, 0);
    const std::string out2 = scratch.path + "/b2";
    CommandResult bad = Chatctl(CHATCTL_BIN, *f.relay, {"backup", "create", "--out", out2});
    INFO(bad.err);
    CHECK(bad.exit_code == 1);
    CHECK(bad.err.find(blob) != std::string::npos);
    std::vector<std::string> left;
    for (const auto& e : fs::directory_iterator(scratch.path)) left.push_back(e.path().filename().string());
    CHECK(left == std::vector<std::string>{"b1"});
  }

  SECTION("an absolute relay.data_dir is pointed at the restore target") {
    MUST(f.relay->SetConfig("relay", "data_dir", Quote(f.relay->dir())));
    const std::string out2 = scratch.path + "/b2", d = scratch.path + "/elsewhere";
    REQUIRE(Chatctl(CHATCTL_BIN, *f.relay, {"backup", "create", "--out", out2}).exit_code == 0);
    CommandResult dry = Ctl({"backup", "restore", out2, "--data-dir", d, "--dry-run"});
    INFO(dry.out << dry.err);
    CHECK(dry.exit_code == 0);
    CHECK(dry.out.find("rewritten") != std::string::npos);
    CHECK_FALSE(fs::exists(d));
    CommandResult r = Ctl({"backup", "restore", out2, "--data-dir", d});
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("rewritten") != std::string::npos);
    CHECK(ReadFile(d + "/chatd.toml").find("data_dir = \".\"") != std::string::npos);
    CHECK(ReadFile(d + "/chatd.toml").find(f.relay->dir()) == std::string::npos);
  }

  SECTION("restore refuses a data dir where a relay runs, even with --yes") {
    CommandResult r = Ctl({"backup", "restore", out, "--data-dir", f.relay->dir(), "--yes"});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("running") != std::string::npos);
  }

  SECTION("the restored relay has the history from before the backup and the same logins") {
    auto restored = RestoreAndStart(out, {});
    HttpResponse login = ApiPost(restored->api(), "/auth/login",
                                 JsonBuilder().Add("username", "alice").Add("password", f.alice.password).str());
    INFO(login.Describe());
    REQUIRE(login.status == 200);
    std::string token = StrOf(Get(login.data(), "access_token"));
    CHECK(HistoryIds(*restored, token, f.chat) == f.before);
    CHECK(HistoryIds(*f.relay, f.alice.access_token, f.chat).size() == f.before.size() + 1);
    // Marked restored, but with no peers pinned there is nothing to take back: it just
    // starts (ready, and it writes).
    CHECK(CountLogLines(*restored, "recovery: started on a restored store; nothing to wait for") == 1);
    CHECK(CountLogLines(*restored, "no peers are pinned") == 1);
    MUST(PostText(restored->api(), token, f.chat, "after the restore"));
  }
}

TEST_CASE("backup: encrypted with a key file, the wrong key fails, the right one restores", "[integration][backup]") {
  Fixture f = Setup();
  ScratchDir scratch;
  const std::string key = scratch.path + "/backup.key", other = scratch.path + "/other.key";
  REQUIRE(Ctl({"backup", "keygen", "--out", key}).exit_code == 0);
  REQUIRE(Ctl({"backup", "keygen", "--out", other}).exit_code == 0);
  CHECK(ModeOf(key) == 0600);
  CHECK(Ctl({"backup", "keygen", "--out", key}).exit_code == 1);  // never replaced

  const std::string out = scratch.path + "/enc";
  CommandResult made = Chatctl(CHATCTL_BIN, *f.relay, {"backup", "create", "--out", out, "--key-file", key});
  INFO(made.out << made.err);
  REQUIRE(made.exit_code == 0);
  const std::string token = f.relay->AdminToken();
  CHECK(ReadFile(out + "/admin.token").find(token) == std::string::npos);
  CHECK(ReadFile(out + "/manifest.json").find(token) == std::string::npos);
  CHECK(ReadFile(out + "/" + OnlyBlob(out)).find("backed-up bytes") == std::string::npos);

  CommandResult no_key = Ctl({"backup", "verify", out});
  CHECK(no_key.exit_code == 2);
  CHECK(no_key.err.find("--key-file") != std::string::npos);
  CommandResult wrong = Ctl({"backup", "verify", out, "--key-file", other});
  INFO(wrong.err);
  CHECK(wrong.exit_code == 1);
  CHECK(wrong.err.find("wrong backup key") != std::string::npos);
  CommandResult right = Ctl({"backup", "verify", out, "--key-file", key});
  INFO(right.out << right.err);
  CHECK(right.exit_code == 0);

  // The manifest is authenticated by manifest.mac: an altered manifest, one without its
  // mac, and one that says "not encrypted" are refused, by verify and restore alike.
  const std::string manifest = ReadFile(out + "/manifest.json");
  auto altered = [&](const std::string& name, const std::string& text, bool keep_mac) {
    const std::string copy = scratch.path + "/" + name;
    fs::copy(out, copy, fs::copy_options::recursive);
    std::ofstream(copy + "/manifest.json", std::ios::trunc) << text;
    if (!keep_mac) fs::remove(copy + "/manifest.mac");
    return copy;
  };
  const size_t at = manifest.find("\"envelopes\":");
  REQUIRE(at != std::string::npos);
  std::string more = manifest;
  more.insert(at + 12, "1");  // one more digit in the envelope count
  const std::string edited = altered("edited", more, true);
  CommandResult bad = Ctl({"backup", "verify", edited, "--key-file", key});
  INFO(bad.err);
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find("does not match manifest.mac") != std::string::npos);
  CHECK(Ctl({"backup", "restore", edited, "--data-dir", scratch.path + "/never", "--key-file", key}).exit_code == 1);
  CHECK_FALSE(FileExists(scratch.path + "/never/chatd.db"));
  const std::string no_mac = altered("no-mac", manifest, false);
  CommandResult unauth = Ctl({"backup", "verify", no_mac, "--key-file", key});
  INFO(unauth.err);
  CHECK(unauth.exit_code == 1);
  CHECK(unauth.err.find("--allow-unauthenticated") != std::string::npos);
  CHECK(Ctl({"backup", "verify", no_mac, "--key-file", key, "--allow-unauthenticated"}).exit_code == 0);
  std::string plain = manifest;
  const size_t cipher = plain.find("xchacha20poly1305-secretstream");
  REQUIRE(cipher != std::string::npos);
  plain.replace(cipher, std::string("xchacha20poly1305-secretstream").size(), "none");
  CommandResult said_plain = Ctl({"backup", "verify", altered("plain", plain, false), "--key-file", key});
  INFO(said_plain.err);
  CHECK(said_plain.exit_code == 1);
  CHECK(said_plain.err.find("not encrypted") != std::string::npos);

  auto restored = RestoreAndStart(out, {"--key-file", key});
  CHECK(restored->AdminToken() == token);
  HttpResponse login = ApiPost(restored->api(), "/auth/login",
                               JsonBuilder().Add("username", "bob").Add("password", f.bob.password).str());
  INFO(login.Describe());
  REQUIRE(login.status == 200);
  CHECK(HistoryIds(*restored, StrOf(Get(login.data(), "access_token")), f.chat) == f.before);
}

TEST_CASE("backup: a manifest naming ../x is refused by verify and restore, a linked blobs/ by verify",
          "[integration][backup]") {
  Fixture f = Setup();
  ScratchDir scratch;
  const std::string out = scratch.path + "/b";
  REQUIRE(Chatctl(CHATCTL_BIN, *f.relay, {"backup", "create", "--out", out}).exit_code == 0);
  std::string manifest = ReadFile(out + "/manifest.json");
  const std::string from = "\"path\":\"chatd.toml\"";
  auto at = manifest.find(from);
  REQUIRE(at != std::string::npos);
  manifest.replace(at, from.size(), "\"path\":\"../x\"");
  { std::ofstream(out + "/manifest.json", std::ios::trunc) << manifest; }
  fs::copy_file(out + "/chatd.toml", scratch.path + "/x");  // what ../x would name

  CommandResult v = Ctl({"backup", "verify", out});
  CHECK(v.exit_code == 1);
  CHECK(v.err.find("../x") != std::string::npos);
  const std::string d = scratch.path + "/d/sub";
  CommandResult r = Ctl({"backup", "restore", out, "--data-dir", d});
  CHECK(r.exit_code == 1);
  CHECK_FALSE(FileExists(d + "/chatd.db"));
  CHECK_FALSE(FileExists(scratch.path + "/d/x"));

  // blobs/ as a symbolic link to a copy elsewhere: not read through.
  const std::string out2 = scratch.path + "/b2";
  REQUIRE(Chatctl(CHATCTL_BIN, *f.relay, {"backup", "create", "--out", out2}).exit_code == 0);
  fs::rename(out2 + "/blobs", scratch.path + "/elsewhere");
  fs::create_directory_symlink(scratch.path + "/elsewhere", out2 + "/blobs");
  CommandResult linked = Ctl({"backup", "verify", out2});
  INFO(linked.err);
  CHECK(linked.exit_code == 1);
  CHECK(linked.err.find("blobs is not a directory") != std::string::npos);
}

}  // namespace chatd::test
