// Tests for chatctl bench's wire code: WebSocket framing both ways, the upgrade
// handshake, the event scanner that reads server frames without a DOM, and the
// numbered message content.
#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "cli/bench_scan.h"
#include "cli/bench_ws.h"

namespace chatd::cli::bench {
namespace {

struct Event {
  std::string type, body;
};

std::vector<Event> Events(const std::string& payload, std::vector<std::string>* bodies) {
  std::vector<Event> out;
  ForEachEvent(payload, [&](const ScannedEvent& ev) {
    out.push_back(Event{std::string(ev.type), std::string(ev.body)});
    bodies->push_back(std::string(ev.body));
  });
  return out;
}

TEST_CASE("server frames decode: sizes, partial input, control frames, errors", "[unit][bench]") {
  for (size_t n : {0u, 1u, 125u, 126u, 65535u, 65536u, 200000u}) {
    INFO("payload " << n);
    std::string wire;
    std::string payload(n, 'a');
    AppendServerHeader(&wire, kWsText, n);
    wire += payload;
    wire += "\x81\x02hi";  // a second frame right behind
    WsFrame f;
    size_t used = 0;
    // Every strict prefix of the first frame needs more.
    for (size_t cut : {size_t{0}, size_t{1}, n > 0 ? wire.size() - 5 : size_t{1}}) {
      if (cut >= wire.size() - 4) continue;
      REQUIRE(DecodeFrame(wire.data(), cut, false, 1u << 20, &f, &used) == WsDecode::kNeedMore);
    }
    REQUIRE(DecodeFrame(wire.data(), wire.size(), false, 1u << 20, &f, &used) == WsDecode::kFrame);
    CHECK(f.opcode == kWsText);
    CHECK(f.fin);
    CHECK(f.payload.size() == n);
    CHECK(used == wire.size() - 4);
    REQUIRE(DecodeFrame(wire.data() + used, wire.size() - used, false, 1u << 20, &f, &used) == WsDecode::kFrame);
    CHECK(f.payload == "hi");
  }
  WsFrame f;
  size_t used = 0;
  std::string masked = "\x81\x82\x01\x02\x03\x04xy";
  CHECK(DecodeFrame(masked.data(), masked.size(), false, 100, &f, &used) == WsDecode::kError);  // masked from a server
  std::string rsv("\xC1\x00", 2);
  CHECK(DecodeFrame(rsv.data(), rsv.size(), false, 100, &f, &used) == WsDecode::kError);  // compressed: not negotiated
  std::string big_ping("\x89\x7E\x00\x80", 4);
  CHECK(DecodeFrame(big_ping.data(), big_ping.size(), false, 1000, &f, &used) == WsDecode::kError);
  std::string too_big;
  AppendServerHeader(&too_big, kWsText, 5000);
  too_big += std::string(5000, 'x');
  CHECK(DecodeFrame(too_big.data(), too_big.size(), false, 4096, &f, &used) == WsDecode::kError);
  std::string frag =
      "\x01\x03"
      "abc";  // text, not final
  REQUIRE(DecodeFrame(frag.data(), frag.size(), false, 100, &f, &used) == WsDecode::kFrame);
  CHECK_FALSE(f.fin);
}

TEST_CASE("client frames are masked and decode back to the payload", "[unit][bench]") {
  for (size_t n : {0u, 3u, 7u, 8u, 9u, 125u, 126u, 1000u, 70000u}) {
    INFO("payload " << n);
    std::string payload;
    for (size_t i = 0; i < n; ++i) payload.push_back(static_cast<char>('a' + i % 26));
    std::string wire;
    AppendFrame(&wire, kWsText, payload, 0xA1B2C3D4u);
    CHECK((static_cast<unsigned char>(wire[1]) & 0x80) != 0);
    if (n >= 8) CHECK(wire.find(payload.substr(0, 8)) == std::string::npos);  // not in clear
    WsFrame f;
    size_t used = 0;
    REQUIRE(DecodeFrame(wire.data(), wire.size(), true, 1u << 20, &f, &used) == WsDecode::kFrame);
    CHECK(used == wire.size());
    CHECK(f.payload == payload);
  }
  // Masking at an odd phase equals byte-by-byte XOR.
  std::string a = "0123456789abcdefghij", b = a;
  uint32_t key = 0x11223344u;
  MaskBytes(a.data() + 3, a.size() - 3, key, 3);
  unsigned char k[4];
  memcpy(k, &key, 4);
  for (size_t i = 3; i < b.size(); ++i) b[i] = static_cast<char>(b[i] ^ k[i & 3]);
  CHECK(a == b);
}

TEST_CASE("upgrade handshake: RFC 6455 accept value, response and request heads", "[unit][bench]") {
  CHECK(WsAccept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");  // RFC 6455 section 1.3
  CHECK(NewWsKey(1).size() == 24);
  CHECK(NewWsKey(1) != NewWsKey(2));
  std::string req = UpgradeRequest("127.0.0.1:8081", "/ws", "KEY==");
  size_t head = 0;
  std::string path, key;
  REQUIRE(ParseRequestHead(req, &head, &path, &key) == HttpHead::kComplete);
  CHECK(head == req.size());
  CHECK(path == "/ws");
  CHECK(key == "KEY==");

  std::string res =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nconnection: Upgrade\r\n"
      "sec-websocket-accept:  abc=  \r\n\r\n\x81\x02hi";
  int status = 0;
  std::string accept;
  CHECK(ParseResponseHead(res.substr(0, 30), &head, &status, &accept) == HttpHead::kNeedMore);
  REQUIRE(ParseResponseHead(res, &head, &status, &accept) == HttpHead::kComplete);
  CHECK(status == 101);
  CHECK(accept == "abc=");
  CHECK(res.substr(head) == "\x81\x02hi");
  CHECK(ParseResponseHead("garbage\r\n\r\n", &head, &status, &accept) == HttpHead::kError);
  REQUIRE(ParseResponseHead("HTTP/1.1 404 Not Found\r\n\r\n", &head, &status, &accept) == HttpHead::kComplete);
  CHECK(status == 404);
}

TEST_CASE("the scanner finds string fields without a DOM", "[unit][bench]") {
  std::string_view v;
  std::string body = R"({"type":"message_sent","temp_id":"42","message_id":"9","n":5})";
  REQUIRE(FindStringField(body, "type", &v));
  CHECK(v == "message_sent");
  REQUIRE(FindStringField(body, "temp_id", &v));
  CHECK(v == "42");
  CHECK_FALSE(FindStringField(body, "missing", &v));
  CHECK_FALSE(FindStringField(body, "n", &v));  // present, but a number
  // Spaces around the colon; a value equal to a key name; an escaped key inside a string.
  std::string tricky = R"({ "a" : "type", "s":"say \"content\":\"no\"", "content" :  "yes \"q\" \\" })";
  REQUIRE(FindStringField(tricky, "content", &v));
  CHECK(v == R"(yes \"q\" \\)");
  REQUIRE(FindStringField(tricky, "a", &v));
  CHECK(v == "type");
  CHECK_FALSE(FindStringField(tricky, "type", &v));
  // "message_type" must not match "type".
  std::string nested = R"({"message":{"message_type":"text"},"type":"new_message"})";
  REQUIRE(FindStringField(nested, "type", &v));
  CHECK(v == "new_message");
  CHECK_FALSE(FindStringField(R"({"content":"unterminated)", "content", &v));
}

TEST_CASE("frames holding one event or an array of events", "[unit][bench]") {
  std::vector<std::string> bodies;
  auto one = Events(R"({"type":"auth_ok","user_id":"1"})", &bodies);
  REQUIRE(one.size() == 1);
  CHECK(one[0].type == "auth_ok");

  bodies.clear();
  std::string arr = R"( [ {"type":"new_message","message":{"content":"a ] } [ {"}} , {"type":"pong"},)"
                    R"({"type":"error","code":"bad_request","ref":"7"} ])";
  auto many = Events(arr, &bodies);
  REQUIRE(many.size() == 3);
  CHECK(many[0].type == "new_message");
  CHECK(bodies[0] == R"({"type":"new_message","message":{"content":"a ] } [ {"}})");
  CHECK(many[1].type == "pong");
  CHECK(many[2].type == "error");
  std::string_view code;
  REQUIRE(FindStringField(many[2].body, "code", &code));
  CHECK(code == "bad_request");

  bodies.clear();
  CHECK(Events("", &bodies).empty());
  CHECK(Events("42", &bodies).empty());
  CHECK(Events(R"(["not an object", 5])", &bodies).empty());
  auto untyped = Events(R"({"x":1})", &bodies);
  REQUIRE(untyped.size() == 1);
  CHECK(untyped[0].type.empty());
}

TEST_CASE("message content carries step, sender, sequence and intended time", "[unit][bench]") {
  Stamp in{3, 1234, 987654321, 1'700'000'000'123'456'789};
  std::string c;
  EncodeContent(&c, in, 100);
  CHECK(c.size() == 100);
  Stamp out;
  REQUIRE(DecodeContent(c, &out));
  CHECK(out.step == 3);
  CHECK(out.sender == 1234);
  CHECK(out.seq == 987654321u);
  CHECK(out.t_ns == in.t_ns);
  // Never truncated below its numbers; no padding when the size is small.
  std::string small;
  EncodeContent(&small, in, 10);
  REQUIRE(DecodeContent(small, &out));
  CHECK(out.seq == 987654321u);
  CHECK_FALSE(DecodeContent("hello world", &out));
  CHECK_FALSE(DecodeContent("bm 1 2 3", &out));
  CHECK_FALSE(DecodeContent("bm 1 2 3 x", &out));
  CHECK_FALSE(DecodeContent("bm 1 2 3 4y", &out));
  CHECK_FALSE(DecodeContent("bm 99999999999 2 3 4", &out));
}

}  // namespace
}  // namespace chatd::cli::bench
