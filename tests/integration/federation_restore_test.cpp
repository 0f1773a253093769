// A federated relay restored from a backup, or whose data directory was otherwise rolled
// back, takes back from its peers the envelopes it signed after that point before it signs
// anything new (relay/recovery.h; DESIGN.md §4 invariants 1 and 3):
//  * restored with `chatctl backup restore` while its peers are down, it is up but not
//    ready and refuses writes (REST 503 `unavailable` with Retry-After, WebSocket `error`
//    `unavailable` with retry_after); once the peers are back it has its lost tail again,
//    the very same envelopes, with identical history everywhere, no peer quarantines it, a
//    write works and reaches the peers, `chatctl store verify` passes on every relay;
//  * a data directory copied back (no restore mark) holds as soon as a peer's vector shows
//    more of its own log, and recovers the same way;
//  * the restored wait ends by `chatctl federation release-recovery` or after
//    `federation.restore_wait`.
#include <filesystem>

#include "crypto/envelope.h"
#include "tests/integration/harness.h"
#include "tests/support/fed_checks.h"
#include "tests/support/fed_cluster.h"

namespace chatd::test {
namespace {

namespace fs = std::filesystem;

constexpr int kRecoverMs = 45000;  // a peer's reconnect backoff reaches 30 s (plus jitter)

// A fresh empty directory under /tmp, removed with everything in it at scope exit.
struct ScratchDir {
  std::string path;
  ScratchDir() {
    std::string t = (fs::temp_directory_path() / "chatd-restore-test-XXXXXX").string();
    REQUIRE(mkdtemp(t.data()) != nullptr);
    path = t;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!getenv("CHATD_KEEP_TEST_DIRS")) fs::remove_all(path, ec);
  }
};

// n relays with fixed federation ports: relay i dials every relay j > i (url pinned), and
// j pins i by key only, so every link is dialed from one side and the first relay (A) has
// every other as a dialed peer.
struct Mesh {
  std::vector<std::unique_ptr<RelayProcess>> r;
  std::vector<int> ports;
  std::vector<std::string> keys;

  RelayProcess& operator[](size_t i) { return *r[i]; }
  std::vector<const RelayProcess*> all() const {
    std::vector<const RelayProcess*> out;
    for (const auto& p : r) out.push_back(p.get());
    return out;
  }
  std::string Url(size_t i) const { return "ws://127.0.0.1:" + std::to_string(ports[i]); }

  void Start(const std::vector<std::string>& names, const std::vector<ConfigEdit>& extra = {}) {
    for (size_t i = 0; i < names.size(); ++i) {
      RelayOptions o = FedOptions(Options(names[i], static_cast<int>(21 + i)));
      o.config.insert(o.config.end(), extra.begin(), extra.end());
      ports.push_back(FedPortOf(o));
      r.push_back(std::make_unique<RelayProcess>(o));
      MUST(r.back()->Init());
      keys.push_back(MUST(PublicKeyOf(CHATCTL_BIN, *r.back())));
    }
    for (size_t i = 0; i < r.size(); ++i) {
      for (size_t j = 0; j < r.size(); ++j) {
        if (i == j) continue;
        MUST(PeerAdd(CHATCTL_BIN, *r[i], r[j]->name(), i < j ? Url(j) : "", keys[j]));
      }
    }
    for (auto& p : r) MUST(p->Start());
    for (size_t i = 0; i < r.size(); ++i) {
      for (size_t j = i + 1; j < r.size(); ++j) {
        INFO(r[i]->name() << " - " << r[j]->name());
        REQUIRE(WaitLinked(CHATCTL_BIN, *r[i], r[j]->name(), 20000));
        REQUIRE(WaitLinked(CHATCTL_BIN, *r[j], r[i]->name(), 20000));
      }
    }
  }
};

// `chatctl ARGS...` with no relay config (backup restore needs none).
CommandResult Ctl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {CHATCTL_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, 60000);
}

HttpResponse Readyz(const RelayProcess& relay) {
  HttpRequest r;
  r.path = "/readyz";
  r.timeout_ms = 3000;
  return HttpCall(relay.api(), r);
}

// The "recovery" object of the admin status (null when the relay originates).
Json RecoveryOf(const RelayProcess& relay) {
  AdminStatus st = MUST(GetAdminStatus(relay));
  Json d = MUST(Json::Parse(st.text));
  return Json::FromValue(d["recovery"]);
}

uint64_t OwnSeq(const RelayProcess& relay) {
  AdminStatus st = MUST(GetAdminStatus(relay));
  return st.vector[relay.name()];
}

// The (origin, seq, header hash) of every envelope of `origin` in a relay's log.
std::set<std::tuple<std::string, uint64_t, std::string>> OwnKeys(const RelayProcess& relay, const std::string& origin) {
  auto rows = MUST(ReadEnvelopeLog(relay.dir() + "/chatd.db"));
  std::set<std::tuple<std::string, uint64_t, std::string>> out;
  for (const auto& k : LogKeys(rows)) {
    if (std::get<0>(k) == origin) out.insert(k);
  }
  return out;
}

// No relay quarantined anyone, and none saw an equivocation.
void RequireNoQuarantine(const std::vector<const RelayProcess*>& relays) {
  for (const RelayProcess* r : relays) {
    INFO("relay " << r->name());
    Json f = MUST(GetAdminFederation(*r));
    REQUIRE(f["quarantined"].IsArray());
    CHECK(f["quarantined"].GetArray().Size() == 0);
    CHECK(MUST(MetricValue(*r, "chatd_federation_equivocations_total")) == 0);
  }
}

void RequireStoreVerify(const std::vector<const RelayProcess*>& relays) {
  for (const RelayProcess* r : relays) {
    CommandResult v = Chatctl(CHATCTL_BIN, *r, {"store", "verify"}, 60000);
    INFO("chatctl store verify on " << r->name() << ": " << v.out << v.err);
    CHECK(v.exit_code == 0);
  }
}

HttpResponse PostMessage(const RelayProcess& relay, const std::string& token, const std::string& chat,
                         const std::string& content, const std::string& client_msg_id = "") {
  JsonBuilder b;
  b.Add("message_type", "text").Add("content", content);
  if (!client_msg_id.empty()) b.Add("client_msg_id", client_msg_id);
  return ApiPost(relay.api(), "/chats/" + chat + "/messages", b.str(), token);
}

// A write is refused, retryably, on both REST and the WebSocket.
void RequireWritesRefused(const RelayProcess& relay, const std::string& token, const std::string& chat) {
  HttpResponse r = PostMessage(relay, token, chat, "written while recovering");
  CheckRestError(r, 503, "unavailable");
  CHECK(r.Header("Retry-After") == "5");
  CHECK(Dump(r.json["retry_after"]) == "5");
  CHECK(r.error_message().find("recovering its own log") != std::string::npos);
  WsSession ws = MUST(Auth(relay, token));  // reads and sessions work meanwhile
  SEND(ws, SendMessageFrame(chat, "sent while recovering", "rec-1"));
  auto ev = ws.WaitFor([](const Json& e) { return e.type() == "error" || e.type() == "message_sent"; }, kEventMs);
  REQUIRE(ev.ok());
  INFO(ev->text());
  CHECK(ev->type() == "error");
  CHECK(ev->Str("code") == "unavailable");
  CHECK(ev->Str("ref") == "rec-1");
  CHECK(Dump((*ev)["retry_after"]) == "5");
}

bool WaitReady(const RelayProcess& relay, int timeout_ms) {
  return WaitFor([&] { return Readyz(relay).status == 200; }, timeout_ms, 50);
}

}  // namespace

TEST_CASE(
    "federation restore: a relay restored from a backup takes its lost tail back from its peers, "
    "refusing writes until then, and no peer quarantines it",
    "[integration][federation][backup][restore]") {
  Mesh m;
  m.Start({"eu1", "us1", "ap1"});
  RelayProcess& A = m[0];
  RelayProcess& B = m[1];
  RelayProcess& C = m[2];

  TestUser alice = MUST(RegisterUser(A, "alice"));
  TestUser bob = MUST(RegisterUser(B, "bob"));
  RequireConverged(m.all(), 15000);
  std::string chat = MUST(CreateChat(A.api(), alice.access_token, "group", {bob.user_id}, "restored"));
  for (int i = 0; i < 5; ++i)
    MUST(PostText(A.api(), alice.access_token, chat, "before the backup " + std::to_string(i)));
  RequireConverged(m.all(), 15000);

  ScratchDir scratch;
  const std::string backup = scratch.path + "/eu1";
  CommandResult made = Chatctl(CHATCTL_BIN, A, {"backup", "create", "--out", backup}, 60000);
  INFO(made.out << made.err);
  REQUIRE(made.exit_code == 0);
  const uint64_t backed_up_seq = OwnSeq(A);

  // The tail the backup lacks: posts (with client ids), an edit, a reaction, a new chat, and
  // bob's message relayed through A's view. B and C get all of it.
  std::vector<std::string> tail_ids;
  for (int i = 0; i < 10; ++i) {
    HttpResponse p =
        PostMessage(A, alice.access_token, chat, "after the backup " + std::to_string(i), "tail-" + std::to_string(i));
    REQUIRE_MSG(p.status == 201, p.Describe());
    tail_ids.push_back(StrOf(Get(p.data(), "message_id")));
  }
  HttpResponse ed = ApiPatch(A.api(), "/chats/" + chat + "/messages/" + tail_ids[2],
                             JsonBuilder().Add("content", "after the backup 2, edited").str(), alice.access_token);
  REQUIRE_MSG(ed.status == 200, ed.Describe());
  HttpResponse re = ApiPost(A.api(), "/chats/" + chat + "/messages/" + tail_ids[4] + "/reactions",
                            JsonBuilder().Add("reaction_type", "\xF0\x9F\x91\x8D").str(), alice.access_token);
  REQUIRE_MSG(re.status == 201, re.Describe());
  std::string chat2 = MUST(CreateChat(A.api(), alice.access_token, "group", {bob.user_id}, "created after the backup"));
  MUST(PostText(A.api(), alice.access_token, chat2, "in the second chat"));
  MUST(PostText(B.api(), bob.access_token, chat, "bob, from us1"));
  RequireConverged(m.all(), 15000);
  const uint64_t full_seq = OwnSeq(A);
  REQUIRE(full_seq >= backed_up_seq + 14);
  const auto own_before = OwnKeys(A, A.name());
  const auto hist_before = RequireIdenticalHistory(m.all(), alice.access_token, chat);
  REQUIRE(hist_before.size() == 16);

  // Everyone stops; A's data directory goes back to the backup.
  for (auto& p : m.r) REQUIRE(MUST(p->Stop()) == 0);
  CommandResult rest = Ctl({"backup", "restore", backup, "--data-dir", A.dir(), "--yes"});
  INFO(rest.out << rest.err);
  REQUIRE(rest.exit_code == 0);
  CHECK(OwnKeys(A, A.name()).size() == backed_up_seq);

  // A alone: up, but not ready, and it originates nothing.
  MUST(A.StartListening());
  REQUIRE(WaitLogLines(A, "recovery: started on a restored store", 1, 10000));
  HttpResponse rz = Readyz(A);
  INFO(rz.Describe());
  CHECK(rz.status == 503);
  CHECK(rz.json.Str("status") == "recovering");
  CHECK(rz.json.Str("reason").find("restored from a backup") != std::string::npos);
  Json rec = RecoveryOf(A);
  INFO(rec.text());
  REQUIRE(rec.IsObject());
  CHECK(rec["restored_wait"].IsTrue());
  CHECK(Dump(rec["waiting_for"]).find("\"us1\"") != std::string::npos);
  CHECK(Dump(rec["waiting_for"]).find("\"ap1\"") != std::string::npos);
  CHECK(MUST(MetricValue(A, "chatd_recovering")) == 1);
  CommandResult st = Chatctl(CHATCTL_BIN, A, {"status"});
  CHECK(st.out.find("recovery") != std::string::npos);
  RequireWritesRefused(A, alice.access_token, chat);
  MUST(History(A.api(), alice.access_token, chat));  // reads work meanwhile
  CHECK(OwnSeq(A) == backed_up_seq);

  // The peers come back: A takes its tail back from them, then is ready.
  MUST(B.Start());
  MUST(C.Start());
  if (!WaitReady(A, kRecoverMs)) FAIL("A not ready after its peers came back; /readyz: " << Readyz(A).Describe());
  CHECK(RecoveryOf(A).IsNull());
  CHECK(MUST(MetricValue(A, "chatd_recovering")) == 0);
  // Ready as soon as the batch that completes the tail is applied; it is durable (and
  // logged) a moment later.
  CHECK(WaitLogLines(A, "recovery: done", 1, 5000));
  RequireConverged(m.all(), 15000);
  CHECK(OwnSeq(A) == full_seq);
  CHECK(CountLogLines(A, "recovery: done") == 1);
  CHECK(CountLogLines(B, "peer is recovering its own log") + CountLogLines(C, "peer is recovering its own log") >= 1);
  CHECK(OwnKeys(A, A.name()) == own_before);  // the very envelopes it had signed, not new ones
  RequireIdenticalLogs(m.all());
  auto hist_after = RequireIdenticalHistory(m.all(), alice.access_token, chat);
  std::vector<std::string> before_keys, after_keys;
  for (const auto& h : hist_before) before_keys.push_back(HistoryKey(h));
  for (const auto& h : hist_after) after_keys.push_back(HistoryKey(h));
  CHECK(after_keys == before_keys);
  CHECK(MUST(History(A.api(), alice.access_token, chat2)).size() == 1);
  RequireNoQuarantine(m.all());

  // A repeated client_msg_id of the lost tail answers the recovered message, not a new one.
  HttpResponse again = PostMessage(A, alice.access_token, chat, "after the backup 3", "tail-3");
  INFO(again.Describe());
  REQUIRE(again.success());
  CHECK(StrOf(Get(again.data(), "message_id")) == tail_ids[3]);
  // A new write works and reaches the peers.
  HttpResponse fresh = PostMessage(A, alice.access_token, chat, "after the recovery");
  REQUIRE_MSG(fresh.status == 201, fresh.Describe());
  RequireConverged(m.all(), 15000);
  CHECK(OwnSeq(A) == full_seq + 1);
  auto hist_final = RequireIdenticalHistory(m.all(), bob.access_token, chat);
  REQUIRE_FALSE(hist_final.empty());
  CHECK(hist_final.front().Str("message_id") == StrOf(Get(fresh.data(), "message_id")));
  RequireIdenticalLogs(m.all());
  RequireNoQuarantine(m.all());
  RequireStoreVerify(m.all());

  // The mark is gone: restarted, A is ready at once (B and C stopped, nothing to wait for).
  REQUIRE(MUST(B.Stop()) == 0);
  REQUIRE(MUST(C.Stop()) == 0);
  REQUIRE(MUST(A.Stop()) == 0);
  MUST(A.Start());
  CHECK(RecoveryOf(A).IsNull());
}

TEST_CASE(
    "federation restore: a data directory copied back without a restore mark holds once a peer reports "
    "more of its own log, and recovers it",
    "[integration][federation][restore]") {
  Mesh m;
  m.Start({"eu1", "us1"});
  RelayProcess& A = m[0];
  RelayProcess& B = m[1];
  TestUser alice = MUST(RegisterUser(A, "alice"));
  TestUser bob = MUST(RegisterUser(B, "bob"));
  RequireConverged(m.all(), 15000);
  std::string chat = MUST(CreateChat(A.api(), alice.access_token, "direct", {bob.user_id}));
  for (int i = 0; i < 3; ++i) MUST(PostText(A.api(), alice.access_token, chat, "kept " + std::to_string(i)));
  RequireConverged(m.all(), 15000);

  // A copy of A's stopped data dir's store (a clean stop leaves no WAL).
  ScratchDir scratch;
  REQUIRE(MUST(A.Stop()) == 0);
  fs::copy_file(A.dir() + "/chatd.db", scratch.path + "/chatd.db");
  MUST(A.Start());
  REQUIRE(WaitLinked(CHATCTL_BIN, A, B.name(), 20000));
  for (int i = 0; i < 6; ++i) MUST(PostText(A.api(), alice.access_token, chat, "lost " + std::to_string(i)));
  RequireConverged(m.all(), 15000);
  const auto own_before = OwnKeys(A, A.name());
  const uint64_t full_seq = OwnSeq(A);

  // The copy goes back in place behind chatctl's back.
  REQUIRE(MUST(A.Stop()) == 0);
  for (const char* f : {"chatd.db-wal", "chatd.db-shm", "search.db", "search.db-wal", "search.db-shm"}) {
    std::error_code ec;
    fs::remove(A.dir() + "/" + f, ec);
  }
  fs::copy_file(scratch.path + "/chatd.db", A.dir() + "/chatd.db", fs::copy_options::overwrite_existing);
  REQUIRE(OwnKeys(A, A.name()).size() < full_seq);
  MUST(A.StartListening());
  // B's vector shows more of A's own log than A has: A holds, and takes it back.
  REQUIRE(WaitLogLines(A, "recovery: a peer holds envelopes of this relay's own origin beyond its log", 1, kRecoverMs));
  REQUIRE(WaitLogLines(A, "recovery: done", 1, kRecoverMs));
  RequireConverged(m.all(), 15000);
  CHECK(OwnSeq(A) == full_seq);
  CHECK(OwnKeys(A, A.name()) == own_before);
  RequireIdenticalLogs(m.all());
  RequireIdenticalHistory(m.all(), alice.access_token, chat);
  REQUIRE(WaitReady(A, 10000));
  HttpResponse fresh = PostMessage(A, alice.access_token, chat, "after the recovery");
  REQUIRE_MSG(fresh.status == 201, fresh.Describe());
  RequireConverged(m.all(), 15000);
  CHECK(OwnSeq(A) == full_seq + 1);
  RequireIdenticalLogs(m.all());
  RequireNoQuarantine(m.all());
  RequireStoreVerify(m.all());
}

TEST_CASE("federation restore: the restored wait ends by the operator, or after federation.restore_wait",
          "[integration][federation][backup][restore]") {
  const bool by_operator = GENERATE(true, false);
  INFO((by_operator ? "released by the operator" : "federation.restore_wait passed"));
  Mesh m;
  // restore_wait is read when the relay starts: a short one for the timeout case.
  m.Start({"eu1", "us1"}, {{"federation", "restore_wait", by_operator ? "300" : "3"}});
  RelayProcess& A = m[0];
  RelayProcess& B = m[1];
  TestUser alice = MUST(RegisterUser(A, "alice"));
  TestUser bob = MUST(RegisterUser(B, "bob"));
  RequireConverged(m.all(), 15000);
  std::string chat = MUST(CreateChat(A.api(), alice.access_token, "direct", {bob.user_id}));
  MUST(PostText(A.api(), alice.access_token, chat, "backed up"));
  RequireConverged(m.all(), 15000);
  ScratchDir scratch;
  const std::string backup = scratch.path + "/eu1";
  CommandResult made = Chatctl(CHATCTL_BIN, A, {"backup", "create", "--out", backup}, 60000);
  REQUIRE(made.exit_code == 0);
  // Nothing after the backup: B holds nothing of A's that A lacks.
  REQUIRE(MUST(A.Stop()) == 0);
  REQUIRE(MUST(B.Stop()) == 0);
  CommandResult rest = Ctl({"backup", "restore", backup, "--data-dir", A.dir(), "--yes"});
  INFO(rest.out << rest.err);
  REQUIRE(rest.exit_code == 0);

  MUST(A.StartListening());
  REQUIRE(WaitLogLines(A, "recovery: started on a restored store", 1, 10000));
  if (by_operator) {
    CHECK(Readyz(A).status == 503);
    CommandResult rel = Chatctl(CHATCTL_BIN, A, {"federation", "release-recovery"});
    INFO(rel.out << rel.err);
    CHECK(rel.exit_code == 0);
    CHECK(rel.out.find("released") != std::string::npos);
    CHECK(WaitLogLines(A, "ended by the operator", 1, 5000));
    CommandResult twice = Chatctl(CHATCTL_BIN, A, {"federation", "release-recovery"});
    CHECK(twice.exit_code == 1);  // nothing to release (404)
  }
  REQUIRE(WaitReady(A, 15000));
  if (!by_operator) CHECK(CountLogLines(A, "federation.restore_wait passed") == 1);
  HttpResponse p = PostMessage(A, alice.access_token, chat, "after the wait");
  REQUIRE_MSG(p.status == 201, p.Describe());
  MUST(B.Start());
  RequireConverged(m.all(), kRecoverMs);
  RequireIdenticalLogs(m.all());
  RequireIdenticalHistory(m.all(), alice.access_token, chat);
  RequireNoQuarantine(m.all());
}

}  // namespace chatd::test
