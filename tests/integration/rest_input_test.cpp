// REST bad input: malformed JSON, missing and mistyped fields, oversized bodies, unknown
// and foreign ids, missing or invalid bearer tokens. Each gets the documented error and
// changes nothing (PROTOCOL.md "Conventions", DESIGN.md invariant 5).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "tests/integration/harness.h"
#include "tests/support/fed_cluster.h"

namespace chatd::test {
namespace {

size_t ChatCount(const HostPort& api, const std::string& token) {
  HttpResponse r = ApiGet(api, "/chats", token);
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  const rapidjson::Value* list = &r.data();
  if (list->IsObject()) list = &Get(*list, "chats");
  REQUIRE(list->IsArray());
  return list->Size();
}

// A plain TCP connection to the relay's API port on loopback.
int ConnectRaw(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  return fd;
}

void CheckNames(const HttpResponse& r, const char* field) {
  CheckRestError(r, 400, "bad_request");
  INFO("field " << field << ": " << r.Describe());
  CHECK(r.error_message().find(field) != std::string::npos);
}

}  // namespace

TEST_CASE("REST refuses bad input with the documented errors and changes nothing", "[integration][rest]") {
  RelayOptions opts = Options();
  opts.config.push_back({"limits", "max_body_bytes", "32768"});
  auto relay = StartRelay(opts);
  const HostPort& api = relay->api();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  TestUser carol = MUST(RegisterUser(*relay, "carol"));
  std::string chat = MUST(CreateChat(api, alice.access_token, "direct", {bob.user_id}));
  std::string foreign = MUST(CreateChat(api, bob.access_token, "direct", {carol.user_id}));
  const std::string msgs = "/chats/" + chat + "/messages";
  const std::string& tok = alice.access_token;
  size_t chats_before = ChatCount(api, tok);

  SECTION("POST /chats") {
    CheckRestError(ApiPost(api, "/chats", R"({"chat_type":"group","participants":[)", tok), 400, "bad_request");
    CheckRestError(ApiPost(api, "/chats", "[]", tok), 400, "bad_request");
    CheckRestError(ApiPost(api, "/chats", "", tok), 400, "bad_request");
    CheckNames(ApiPost(api, "/chats", JsonBuilder().Raw("participants", JsonStringArray({bob.user_id})).str(), tok),
               "chat_type");
    CheckNames(ApiPost(api, "/chats", JsonBuilder().Add("chat_type", "group").str(), tok), "participants");
    CheckNames(ApiPost(api, "/chats", JsonBuilder().Add("chat_type", "group").Add("participants", bob.user_id).str(), tok),
               "participants");
    CheckNames(ApiPost(api, "/chats",
                       JsonBuilder().Add("chat_type", "circle").Raw("participants", JsonStringArray({bob.user_id})).str(),
                       tok),
               "chat_type");
    CheckNames(ApiPost(api, "/chats",
                       JsonBuilder().Add("chat_type", 3).Raw("participants", JsonStringArray({bob.user_id})).str(), tok),
               "chat_type");
    CheckNames(ApiPost(api, "/chats",
                       JsonBuilder().Add("chat_type", "group").Raw("participants", "[true]").str(), tok),
               "participants");
    HttpResponse ghost = ApiPost(api, "/chats",
                                 JsonBuilder().Add("chat_type", "group").Add("chat_name", "g")
                                     .Raw("participants", JsonStringArray({bob.user_id, "123456789"})).str(),
                                 tok);
    INFO(ghost.Describe());
    CHECK((ghost.status == 400 || ghost.status == 404));
    CHECK_FALSE(ghost.success());
  }

  SECTION("POST /chats/{id}/messages") {
    CheckRestError(ApiPost(api, msgs, R"({"message_type":"text","content":"x")", tok), 400, "bad_request");
    CheckNames(ApiPost(api, msgs, JsonBuilder().Add("message_type", "text").str(), tok), "content");
    CheckNames(ApiPost(api, msgs, JsonBuilder().Add("message_type", "text").Add("content", 5).str(), tok), "content");
    CheckNames(ApiPost(api, msgs, JsonBuilder().Add("message_type", 5).Add("content", "x").str(), tok), "message_type");
    CheckNames(ApiPost(api, msgs, JsonBuilder().Add("message_type", "hologram").Add("content", "x").str(), tok),
               "message_type");
    // Over limits.max_content_bytes (16384) but under the body limit.
    HttpResponse long_text = ApiPost(api, msgs, JsonBuilder().Add("message_type", "text")
                                                    .Add("content", std::string(20000, 'x')).str(), tok);
    INFO(long_text.Describe());
    CHECK((long_text.status == 400 || long_text.status == 413));
    CHECK_FALSE(long_text.success());
  }

  SECTION("a body over limits.max_body_bytes → 413 too_large") {
    std::string body = JsonBuilder().Add("message_type", "text").Add("content", std::string(40000, 'b')).str();
    CheckRestError(ApiPost(api, msgs, body, tok), 413, "too_large");
    std::string chat_body = JsonBuilder().Add("chat_type", "group").Add("chat_name", std::string(40000, 'n'))
                                .Raw("participants", JsonStringArray({bob.user_id})).str();
    CheckRestError(ApiPost(api, "/chats", chat_body, tok), 413, "too_large");
  }

  SECTION("unknown and foreign ids") {
    std::string post = JsonBuilder().Add("message_type", "text").Add("content", "x").str();
    CheckRestError(ApiGet(api, "/chats/123456789", tok), 404, "not_found");
    CheckRestError(ApiGet(api, "/chats/123456789/messages", tok), 404, "not_found");
    CheckRestError(ApiPost(api, "/chats/123456789/messages", post, tok), 404, "not_found");
    HttpResponse abc = ApiGet(api, "/chats/abc", tok);
    INFO(abc.Describe());
    CHECK((abc.status == 400 || abc.status == 404));
    for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
             {"GET", "/chats/" + foreign},
             {"GET", "/chats/" + foreign + "/messages"},
             {"POST", "/chats/" + foreign + "/messages"}}) {
      HttpResponse r = method == "GET" ? ApiGet(api, path, tok) : ApiPost(api, path, post, tok);
      INFO(method << " " << path << ": " << r.Describe());
      CHECK((r.status == 403 || r.status == 404));
      CHECK_FALSE(r.success());
      CHECK_FALSE(r.error_code().empty());
    }
    // History below an id that is not a number.
    HttpResponse bad_before = ApiGet(api, msgs + "?before_id=xyz", tok);
    INFO(bad_before.Describe());
    CHECK(bad_before.status == 400);
  }

  SECTION("missing or invalid bearer token → 401") {
    std::string post = JsonBuilder().Add("message_type", "text").Add("content", "x").str();
    std::string tampered = tok;
    tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
    for (const std::string& bearer : {std::string(), std::string("garbage"), tampered, alice.refresh_token}) {
      INFO("bearer '" << bearer.substr(0, 20) << "'");
      CheckRestError(ApiGet(api, "/chats", bearer), 401, "unauthorized");
      CheckRestError(ApiPost(api, msgs, post, bearer), 401, "unauthorized");
      CheckRestError(ApiPost(api, "/chats",
                             JsonBuilder().Add("chat_type", "direct").Raw("participants", JsonStringArray({carol.user_id})).str(),
                             bearer),
                     401, "unauthorized");
    }
    // Not a Bearer scheme.
    HttpRequest basic;
    basic.path = "/api/v1/chats";
    basic.headers.push_back({"Authorization", "Basic " + tok});
    CheckRestError(HttpCall(api, basic), 401, "unauthorized");
  }

  // Whatever the section did, nothing changed.
  CHECK(ChatCount(api, tok) == chats_before);
  CHECK(ChatCount(api, carol.access_token) == 1);
  CHECK(MUST(History(api, bob.access_token, chat)).empty());
  CHECK(MUST(History(api, bob.access_token, foreign)).empty());
  // And the relay still does its job.
  MUST(PostText(api, tok, chat, "still fine"));
  CHECK(MUST(History(api, bob.access_token, chat)).size() == 1);
}

// PROTOCOL.md: "Authorization: Bearer <access_token> on everything but register, login,
// refresh" — so the gateway URL too.
TEST_CASE("GET /gateway requires a bearer token", "[integration][rest]") {
  auto relay = StartRelay();
  CheckRestError(ApiGet(relay->api(), "/gateway"), 401, "unauthorized");
  CheckRestError(ApiGet(relay->api(), "/gateway", "garbage"), 401, "unauthorized");
}

TEST_CASE("REST: idle and silent connections do not hold up other clients for long", "[integration][rest]") {
  // Every API thread taken by a connection that says nothing (a client between requests, or
  // a slowloris): a new client is still served once the 2 s keep-alive timeout frees one,
  // well within its 15 s timeout (with the old 30 s, not before it gave up).
  RelayOptions opts = Options();
  opts.config.push_back({"api", "threads", "2"});
  auto relay = StartRelay(opts);
  std::vector<int> silent;
  for (int i = 0; i < 2; ++i) {
    int fd = ConnectRaw(relay->api().port);
    silent.push_back(fd);
  }
  HttpRequest req;
  req.path = "/livez";
  req.timeout_ms = 15000;
  HttpResponse r = HttpCall(relay->api(), req);
  INFO(r.Describe());
  CHECK(r.status == 200);
  for (int fd : silent) close(fd);
}

TEST_CASE("REST: clients that trickle bytes are cut once every API thread is busy", "[integration][rest]") {
  // A slowloris: each connection sends a header byte every 500 ms, so no read ever times
  // out. With 2 API threads and 3 such clients, a real client waits behind them until the
  // guard (relay/slow_clients.h) closes those that moved under 1 KiB in 10 s.
  RelayOptions opts = Options();
  opts.config.push_back({"api", "threads", "2"});
  auto relay = StartRelay(opts);
  std::vector<int> slow;
  for (int i = 0; i < 3; ++i) {
    int fd = ConnectRaw(relay->api().port);
    const std::string start = "GET /livez HTTP/1.1\r\nHost: x\r\n";
    REQUIRE(send(fd, start.data(), start.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(start.size()));
    slow.push_back(fd);
  }
  std::atomic<bool> stop{false};
  std::atomic<int> cut{0};
  std::thread trickle([&] {
    std::vector<bool> open(slow.size(), true);
    for (int round = 0; round < 120 && !stop.load(); ++round) {  // at most 60 s
      for (size_t i = 0; i < slow.size(); ++i) {
        if (open[i] && send(slow[i], "X", 1, MSG_NOSIGNAL) != 1) {
          open[i] = false;
          cut.fetch_add(1);
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  });
  HttpRequest req;
  req.path = "/livez";
  req.timeout_ms = 40000;
  HttpResponse r = HttpCall(relay->api(), req);
  const bool all_cut = WaitFor([&] { return cut.load() >= 2; }, 20000);
  stop = true;
  trickle.join();
  for (int fd : slow) close(fd);
  INFO(r.Describe());
  CHECK(r.status == 200);
  CHECK(all_cut);
  CHECK(MUST(MetricValue(*relay, "chatd_api_slow_clients_closed_total")) >= 2);
}

}  // namespace chatd::test
