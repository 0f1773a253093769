// Keep-alive and deadlines of client sessions (docs/WEBSOCKET.md): the gateway pings a
// session that has been silent for gateway.ping_interval, closes one silent for
// gateway.idle_timeout (a pong counts as traffic), and closes a connection that has not
// authenticated within gateway.auth_timeout. The smallest allowed values keep the tests
// short (ping 5 s, idle 10 s, auth 1 s); every wait is for a condition, bounded by a
// generous deadline, and nothing asserts how long something took.
//
// The test client's own WsClient answers pings by itself, so these tests read the socket
// directly to see the pings and decide whether to answer them.
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include "tests/integration/harness.h"

namespace chatd::test {
namespace {

constexpr int kPingS = 5;
constexpr int kIdleS = 10;
constexpr int64_t kWaitMs = 60000;  // far beyond any deadline under test

RelayOptions LivenessOptions() {
  RelayOptions o = Options();
  o.config.push_back({"gateway", "ping_interval", std::to_string(kPingS)});
  o.config.push_back({"gateway", "idle_timeout", std::to_string(kIdleS)});
  o.config.push_back({"gateway", "auth_timeout", "1"});
  return o;
}

struct RawFrame {
  int opcode = -1;  // -1: the connection ended without a close frame
  std::string payload;
};

// The next server frame read straight from the socket (server frames are unmasked), or
// an error when `deadline_ms` (MonoMs) passes first.
Result<RawFrame> ReadRawFrame(int fd, std::string& buf, int64_t deadline_ms) {
  for (;;) {
    if (buf.size() >= 2) {
      size_t len = static_cast<uint8_t>(buf[1]) & 0x7f, header = 2;
      if (len == 126) {
        header = 4;
        if (buf.size() >= 4) len = (size_t(uint8_t(buf[2])) << 8) | uint8_t(buf[3]);
      } else if (len == 127) {
        header = 10;
        if (buf.size() >= 10) {
          len = 0;
          for (int i = 2; i < 10; ++i) len = (len << 8) | uint8_t(buf[i]);
        }
      }
      if (buf.size() >= header && buf.size() >= header + len) {
        RawFrame f;
        f.opcode = static_cast<uint8_t>(buf[0]) & 0x0f;
        f.payload = buf.substr(header, len);
        buf.erase(0, header + len);
        return f;
      }
    }
    int64_t left = deadline_ms - MonoMs();
    if (left <= 0) return Status(Code::kUnavailable, "timed out waiting for a frame");
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char tmp[4096];
    ssize_t n = recv(fd, tmp, sizeof tmp, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return RawFrame{};
    if (n > 0) buf.append(tmp, static_cast<size_t>(n));
  }
}

// A frame that ends the connection fails the test.
void RequireOpen(const RawFrame& f) {
  INFO("frame opcode " << f.opcode << " payload '" << f.payload << "'");
  REQUIRE(f.opcode != 0x8);
  REQUIRE(f.opcode != -1);
}

// A relay with short deadlines and one authenticated session whose socket the test reads.
struct Fixture {
  std::unique_ptr<RelayProcess> relay = StartRelay(LivenessOptions());
  WsSession s = MUST(Auth(*relay, MUST(RegisterUser(*relay, "alice")).access_token));
  std::string buf;
  int64_t deadline = MonoMs() + kWaitMs;

  Result<RawFrame> Next(int64_t until_ms) { return ReadRawFrame(s.ws().fd(), buf, until_ms); }
};

int CloseCode(const RawFrame& f) {
  if (f.opcode != 0x8 || f.payload.size() < 2) return 0;
  return (int(uint8_t(f.payload[0])) << 8) | uint8_t(f.payload[1]);
}

}  // namespace

TEST_CASE("a silent client is pinged after gateway.ping_interval, then hung up after gateway.idle_timeout",
          "[integration][ws][liveness]") {
  Fixture fx;
  int pings = 0;
  RawFrame last;
  // Never answer: the pings come, then the close.
  for (;;) {
    auto f = fx.Next(fx.deadline);
    if (!f.ok()) FAIL("no close within " << kWaitMs << " ms (pings seen: " << pings << ")");
    if (f->opcode == 0x9) {
      ++pings;
      continue;
    }
    if (f->opcode == 0x1) continue;  // presence or other events: not what is under test
    last = std::move(f).value();
    break;
  }
  CHECK(pings >= 1);
  INFO("close payload '" << last.payload << "'");
  REQUIRE(last.opcode == 0x8);
  CHECK(CloseCode(last) == 1001);
  CHECK(last.payload.substr(2) == "idle timeout");
}

TEST_CASE("a client that answers pings outlives gateway.idle_timeout", "[integration][ws][liveness]") {
  Fixture fx;
  // Three pings answered: the session has been silent (but for pongs) for more than
  // 3 x ping_interval > idle_timeout, so only the pongs kept it open.
  static_assert(3 * kPingS > kIdleS);
  int pings = 0;
  while (pings < 3) {
    auto f = fx.Next(fx.deadline);
    if (!f.ok()) FAIL("only " << pings << " pings within " << kWaitMs << " ms");
    RequireOpen(*f);
    if (f->opcode != 0x9) continue;
    ++pings;
    MUST(fx.s.ws().SendFrame(WsOpcode::kPong, f->payload));
  }
  // Still served: a JSON ping is answered.
  MUST(fx.s.Barrier());
}

TEST_CASE("JSON traffic keeps a session open like pongs do", "[integration][ws][liveness]") {
  Fixture fx;
  int64_t started = MonoMs();
  // A JSON ping every second and the pings left unanswered, until well past idle_timeout:
  // the connection must stay (the loop ends on the elapsed time, not on anything timed).
  while (MonoMs() - started < (kIdleS + 3) * 1000) {
    MUST(fx.s.ws().SendText(R"({"type":"ping"})"));
    int64_t until = std::min(fx.deadline, MonoMs() + 1000);
    for (;;) {
      auto f = fx.Next(until);
      if (!f.ok()) break;  // this second is over
      RequireOpen(*f);
    }
  }
  MUST(fx.s.ws().SendText(R"({"type":"ping"})"));
  for (;;) {
    auto f = fx.Next(fx.deadline);
    if (!f.ok()) FAIL("no pong: " << f.status().message());
    RequireOpen(*f);
    if (f->opcode == 0x1 && f->payload.find("\"pong\"") != std::string::npos) break;
  }
}

TEST_CASE("a connection that does not authenticate within gateway.auth_timeout is closed (1008)",
          "[integration][ws][liveness]") {
  auto relay = StartRelay(LivenessOptions());
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  WsSession authed = MUST(Auth(*relay, alice.access_token));
  WsSession s = MUST(ConnectWs(relay->gateway()));
  int fd = s.ws().fd();
  std::string buf;
  auto f = ReadRawFrame(fd, buf, MonoMs() + kWaitMs);
  if (!f.ok()) FAIL("the unauthenticated connection stayed open: " << f.status().message());
  INFO("frame opcode " << f->opcode << " payload '" << f->payload << "'");
  REQUIRE(f->opcode == 0x8);
  CHECK(CloseCode(*f) == 1008);
  CHECK(f->payload.substr(2) == "authentication timeout");
  // The authenticated session on the same relay is unaffected by the auth deadline.
  MUST(authed.Barrier());
}

}  // namespace chatd::test
