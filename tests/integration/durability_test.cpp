// Durability (DESIGN.md invariants 1 and 3): kill -9 in the middle of a burst of WebSocket
// sends; after a restart on the same data dir every acknowledged message is in history
// exactly once, and no message is there twice.
#include <sys/stat.h>

#include <atomic>
#include <thread>

#include "tests/integration/harness.h"
#include "tests/support/fed_cluster.h"

namespace chatd::test {
namespace {

// One sending connection, on its own thread. No Catch macros here (not thread-safe):
// results go into the struct and are checked on the test thread.
struct Sender {
  WsSession session;
  std::string chat_id;
  int index = 0;
  int total = 2000;
  size_t window = 32;
  std::string pad;  // appended to every content
  std::atomic<int>* acked_total = nullptr;

  std::map<std::string, std::string> acked;  // content → message_id
  std::vector<std::string> errors;           // error events (should be none)
  std::string end;                           // why the loop ended

  std::string Content(int sender, int i) const { return "s" + std::to_string(sender) + "-" + std::to_string(i) + pad; }

  void Run() {
    std::map<std::string, std::string> inflight;  // temp_id → content
    int next = 0;
    for (;;) {
      while (next < total && inflight.size() < window) {
        std::string content = Content(index, next);
        std::string temp = "t" + std::to_string(index) + "-" + std::to_string(next);
        Status s = session.Send(SendMessageFrame(chat_id, content, temp));
        if (!s.ok()) {
          end = "send: " + s.message();
          return;
        }
        inflight[temp] = content;
        ++next;
      }
      if (inflight.empty()) {
        end = "all sent";
        return;
      }
      auto ev = session.Next(10000);
      if (!ev.ok()) {
        end = "recv: " + ev.status().message();
        return;
      }
      if (ev->type() == "error") {
        errors.push_back(ev->text());
        continue;
      }
      // new_message events of all three senders arrive too: skip them.
      if (ev->type() != "message_sent") continue;
      auto it = inflight.find(ev->Str("temp_id"));
      if (it == inflight.end()) {
        errors.push_back("ack for unknown temp_id: " + ev->text());
        continue;
      }
      acked[it->second] = ev->Str("message_id");
      inflight.erase(it);
      acked_total->fetch_add(1);
    }
  }
};

// Three users in one group chat, each with an authenticated sending connection.
struct Burst {
  TestUser alice, bob, carol;
  std::string chat;
  std::atomic<int> acked_total{0};
  std::vector<std::unique_ptr<Sender>> senders;

  Burst(RelayProcess& relay, const std::string& chat_name, int total, const std::string& pad) {
    alice = MUST(RegisterUser(relay, "alice"));
    bob = MUST(RegisterUser(relay, "bob"));
    carol = MUST(RegisterUser(relay, "carol"));
    chat = MUST(CreateChat(relay.api(), alice.access_token, "group", {bob.user_id, carol.user_id}, chat_name));
    const TestUser* users[] = {&alice, &bob, &carol};
    for (int i = 0; i < 3; ++i) {
      auto s = std::make_unique<Sender>();
      s->session = MUST(Auth(relay, users[i]->access_token));
      s->chat_id = chat;
      s->index = i;
      s->total = total;
      s->pad = pad;
      s->acked_total = &acked_total;
      senders.push_back(std::move(s));
    }
  }
};

}  // namespace

TEST_CASE("kill -9 during a burst loses no acknowledged message and duplicates none", "[integration][durability]") {
  auto relay = StartRelay();
  Burst burst(*relay, "burst", 2000, "");
  TestUser &alice = burst.alice, &bob = burst.bob;
  const std::string chat = burst.chat;
  std::atomic<int>& acked_total = burst.acked_total;
  auto& senders = burst.senders;
  std::vector<std::thread> threads;
  for (auto& s : senders) threads.emplace_back([p = s.get()] { p->Run(); });

  bool reached = WaitFor([&] { return acked_total.load() >= 500; }, 60000, 1);
  relay->Kill9();
  for (auto& t : threads) t.join();
  int acked_at_kill = acked_total.load();
  std::string ends;
  for (auto& s : senders) ends += "sender " + std::to_string(s->index) + ": " + s->end + "; ";
  INFO("acknowledged before/around the kill: " << acked_at_kill << "; " << ends);
  REQUIRE(reached);
  for (auto& s : senders) {
    INFO("sender " << s->index << " errors: " << s->errors.size() << (s->errors.empty() ? "" : " first: " + s->errors[0]));
    CHECK(s->errors.empty());
    // The kill, not the end of the burst, stopped it.
    CHECK(s->end != "all sent");
  }

  MUST(relay->Start());
  auto hist = MUST(History(relay->api(), alice.access_token, chat));
  std::map<std::string, int> id_count;
  std::map<std::string, int> content_count;
  std::map<std::string, std::string> content_of;
  for (const auto& m : hist) {
    ++id_count[m.Str("message_id")];
    ++content_count[m.Str("content")];
    content_of[m.Str("message_id")] = m.Str("content");
  }
  size_t missing = 0, duplicated_ids = 0, duplicated_contents = 0, wrong = 0;
  std::string first_missing;
  for (auto& s : senders) {
    for (const auto& [content, mid] : s->acked) {
      if (id_count[mid] == 0) {
        if (first_missing.empty()) first_missing = content + " as " + mid;
        ++missing;
      } else if (content_of[mid] != content) {
        ++wrong;
      }
    }
  }
  for (const auto& [id, n] : id_count) duplicated_ids += n > 1;
  for (const auto& [c, n] : content_count) duplicated_contents += n > 1;
  INFO("history holds " << hist.size() << " messages; first missing: " << first_missing);
  CHECK(missing == 0);
  CHECK(wrong == 0);
  CHECK(duplicated_ids == 0);
  CHECK(duplicated_contents == 0);
  CHECK(hist.size() >= static_cast<size_t>(acked_at_kill));
  // The log's order holds after the restart: newest first by id.
  bool ordered = true;
  for (size_t i = 1; i < hist.size(); ++i) {
    ordered = ordered && IdNum(hist[i - 1].Str("message_id")) > IdNum(hist[i].Str("message_id"));
  }
  CHECK(ordered);

  // The relay goes on working, with ids above everything before the crash.
  std::string after = MUST(PostText(relay->api(), bob.access_token, chat, "after the crash")).Str("message_id");
  if (!hist.empty()) CHECK(IdNum(after) > IdNum(hist.front().Str("message_id")));
}

}  // namespace chatd::test

namespace chatd::test {

TEST_CASE("/metrics: chatd_sync_seconds counts the fdatasync rounds acknowledgements wait for",
          "[integration][durability]") {
  auto relay = StartRelay();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  std::string chat = MUST(CreateChat(relay->api(), alice.access_token, "direct", {bob.user_id}));
  const int64_t before = MUST(MetricValue(*relay, "chatd_sync_seconds_count"));
  for (int i = 0; i < 3; ++i) MUST(PostText(relay->api(), alice.access_token, chat, "sync " + std::to_string(i)));
  // Each post was answered only after its batch was durable: at least one round each
  // (posts one at a time cannot share a round).
  const int64_t after = MUST(MetricValue(*relay, "chatd_sync_seconds_count"));
  CHECK(after >= before + 3);

  HttpRequest req;
  req.path = "/metrics";
  HttpResponse r = HttpCall(relay->api(), req);
  REQUIRE(r.status == 200);
  INFO(r.body.substr(r.body.find("# HELP chatd_sync_seconds")).substr(0, 900));
  CHECK(r.body.find("# TYPE chatd_sync_seconds histogram\n") != std::string::npos);
  // Cumulative buckets, ending with +Inf == _count.
  std::vector<int64_t> buckets;
  for (size_t pos = 0; (pos = r.body.find("chatd_sync_seconds_bucket{le=\"", pos)) != std::string::npos;) {
    size_t sp = r.body.find("} ", pos);
    REQUIRE(sp != std::string::npos);
    buckets.push_back(std::stoll(r.body.substr(sp + 2)));
    pos = sp;
  }
  REQUIRE(buckets.size() == 11);
  CHECK(std::is_sorted(buckets.begin(), buckets.end()));
  CHECK(buckets.back() == MUST(MetricValue(*relay, "chatd_sync_seconds_count")));
  CHECK(r.body.find("chatd_sync_seconds_bucket{le=\"+Inf\"}") != std::string::npos);
  CHECK(r.body.find("\nchatd_sync_seconds_sum ") != std::string::npos);
}

}  // namespace chatd::test

namespace chatd::test {

TEST_CASE("the store's WAL stays bounded under sustained writes, and every message is kept",
          "[integration][durability]") {
  // Without the writer's share of the checkpoint (store.h), this burst left a WAL as large
  // as everything it wrote (tens of MB), whatever store.wal_max_mb said.
  RelayOptions opts = Options();
  opts.config.push_back({"store", "wal_max_mb", "1"});
  auto relay = StartRelay(opts);
  constexpr int kEach = 6000;
  Burst burst(*relay, "wal", kEach, " " + std::string(1500, 'w'));  // ~5 KB of WAL per message: ~90 MB in all
  auto& senders = burst.senders;
  std::vector<std::thread> threads;
  for (auto& s : senders) threads.emplace_back([p = s.get()] { p->Run(); });
  for (auto& t : threads) t.join();
  for (auto& s : senders) {
    INFO("sender " << s->index << ": " << s->end << "; errors: " << s->errors.size()
                   << (s->errors.empty() ? "" : " first: " + s->errors[0]));
    REQUIRE(s->end == "all sent");
    CHECK(s->errors.empty());
    CHECK(s->acked.size() == static_cast<size_t>(kEach));
  }

  // The WAL started over several times and never grew far past its bound (the file keeps
  // its largest size until a clean stop).
  const int64_t resets = MUST(MetricValue(*relay, "chatd_store_wal_resets_total"));
  struct stat st {};
  REQUIRE(::stat((relay->dir() + "/chatd.db-wal").c_str(), &st) == 0);
  INFO("resets " << resets << ", WAL file " << st.st_size << " bytes");
  CHECK(resets >= 3);
  CHECK(st.st_size < 45 * 1024 * 1024);  // half of what the burst wrote into it
  // The operator sees the same through chatctl status.
  CommandResult status = Chatctl(CHATCTL_BIN, *relay, {"-o", "json", "status"});
  auto doc = Json::Parse(status.out);
  REQUIRE(status.exit_code == 0);
  REQUIRE(doc.ok());
  INFO(status.out);
  CHECK((*doc)["wal_frames"].IsInt());
  CHECK(MUST(MetricValue(*relay, "chatd_store_wal_frames")) >= 0);

  // Everything is there, once; and the search index kept up through the resets.
  auto hist = MUST(History(relay->api(), burst.alice.access_token, burst.chat));
  std::set<std::string> ids;
  for (const auto& m : hist) ids.insert(m.Str("message_id"));
  CHECK(hist.size() == 3u * kEach);
  CHECK(ids.size() == 3u * kEach);
  for (auto& s : senders) {
    for (const auto& [content, mid] : s->acked) CHECK(ids.count(mid) == 1);
  }
  const std::string last_id = senders[2]->acked[senders[2]->Content(2, kEach - 1)];
  CHECK(WaitFor(
      [&] {
        auto hits = SearchIds(relay->api(), burst.bob.access_token, "s2 " + std::to_string(kEach - 1));
        return hits.ok() && *hits == std::vector<std::string>{last_id};
      },
      20000, 20));

  // A clean stop truncates the WAL.
  REQUIRE(MUST(relay->Stop()) == 0);
  CHECK((::stat((relay->dir() + "/chatd.db-wal").c_str(), &st) != 0 || st.st_size == 0));
}

}  // namespace chatd::test
