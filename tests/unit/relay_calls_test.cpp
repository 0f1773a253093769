// Unit tests: call signalling's reader and event writer (relay/calls.h).
#include <catch2/catch.hpp>
#include <string>

#include "base/json.h"
#include "relay/calls.h"

using namespace chatd;

namespace {

// ParseCallSignal on a JSON text; the status, and the signal in *out.
Status ParseText(const std::string& text, CallSignal* out) {
  json::Doc doc;
  Status st = json::Parse(text, &doc);
  if (!st.ok()) return st;
  return ParseCallSignal(doc, out);
}

Status Parse(const std::string& text) {
  CallSignal sig;
  return ParseText(text, &sig);
}

}  // namespace

TEST_CASE("calls: call_id is 1 to 64 bytes of letters, digits, _ and -", "[relay][calls]") {
  CHECK(ValidCallId("a"));
  CHECK(ValidCallId("Call_2026-01-15_xyz"));
  CHECK(ValidCallId(std::string(kMaxCallIdBytes, 'x')));
  CHECK_FALSE(ValidCallId(""));
  CHECK_FALSE(ValidCallId(std::string(kMaxCallIdBytes + 1, 'x')));
  CHECK_FALSE(ValidCallId("a b"));
  CHECK_FALSE(ValidCallId("a/b"));
  CHECK_FALSE(ValidCallId("a\"b"));
  CHECK_FALSE(ValidCallId("caf\xC3\xA9"));
  CHECK(IsCallType("call_invite"));
  CHECK(IsCallType("call_end"));
  CHECK_FALSE(IsCallType("call_hold"));
  CHECK_FALSE(IsCallType("typing"));
}

TEST_CASE("calls: each signal type reads its own fields and ignores the others", "[relay][calls]") {
  CallSignal sig;
  REQUIRE(ParseText(R"({"type":"call_invite","chat_id":"42","call_id":"c-1","media":"video","sdp":"v=0\r\n",)"
                    R"("to_user_id":7,"candidate":"ignored","reason":"ignored","user_id":"99"})",
                    &sig)
              .ok());
  CHECK(sig.type == "call_invite");
  CHECK(sig.chat_id == 42);
  CHECK(sig.call_id == "c-1");
  CHECK(sig.to_user_id == 7);
  CHECK(sig.media == "video");
  CHECK(sig.sdp == "v=0\r\n");
  CHECK(sig.candidate.empty());
  CHECK(sig.reason.empty());

  REQUIRE(
      ParseText(
          R"({"type":"call_ice","chat_id":"42","call_id":"c-1","candidate":"candidate:1 1 udp 1 1.2.3.4 5 typ host",)"
          R"("sdp_mid":"0","sdp_mline_index":1,"sdp":"ignored"})",
          &sig)
          .ok());
  CHECK(sig.candidate == "candidate:1 1 udp 1 1.2.3.4 5 typ host");
  CHECK(sig.sdp_mid == "0");
  CHECK(sig.sdp_mline_index == 1);
  CHECK(sig.sdp.empty());
  CHECK(sig.to_user_id == 0);  // the reader starts from a fresh signal

  CHECK(Parse(R"({"type":"call_ice","chat_id":"42","call_id":"c","candidate":""})").ok());  // end of candidates
  CHECK(Parse(R"({"type":"call_ringing","chat_id":"42","call_id":"c"})").ok());
  CHECK(Parse(R"({"type":"call_answer","chat_id":"42","call_id":"c","sdp":"v=0"})").ok());
  CHECK(Parse(R"({"type":"call_reject","chat_id":"42","call_id":"c","reason":"busy"})").ok());
  CHECK(Parse(R"({"type":"call_end","chat_id":"42","call_id":"c"})").ok());
  CHECK(Parse(R"({"type":"call_invite","chat_id":"42","call_id":"c","media":"audio","sdp":null})").ok());
}

TEST_CASE("calls: missing, mistyped and oversized fields are refused, naming the field", "[relay][calls]") {
  auto refused = [](const std::string& text, Code code, const std::string& field) {
    INFO(text);
    Status st = Parse(text);
    REQUIRE_FALSE(st.ok());
    CHECK(st.code() == code);
    CHECK(st.message().find("'" + field + "'") != std::string::npos);
  };
  refused(R"({"type":"call_ringing","call_id":"c"})", Code::kBadRequest, "chat_id");
  refused(R"({"type":"call_ringing","chat_id":"x","call_id":"c"})", Code::kBadRequest, "chat_id");
  refused(R"({"type":"call_ringing","chat_id":"42"})", Code::kBadRequest, "call_id");
  refused(R"({"type":"call_ringing","chat_id":"42","call_id":""})", Code::kBadRequest, "call_id");
  refused(R"({"type":"call_ringing","chat_id":"42","call_id":5})", Code::kBadRequest, "call_id");
  refused(R"({"type":"call_ringing","chat_id":"42","call_id":"a b"})", Code::kBadRequest, "call_id");
  refused(R"({"type":"call_ringing","chat_id":"42","call_id":")" + std::string(65, 'x') + "\"}", Code::kTooLarge,
          "call_id");
  refused(R"({"type":"call_ringing","chat_id":"42","call_id":"c","to_user_id":"bob"})", Code::kBadRequest,
          "to_user_id");
  refused(R"({"type":"call_invite","chat_id":"42","call_id":"c"})", Code::kBadRequest, "media");
  refused(R"({"type":"call_invite","chat_id":"42","call_id":"c","media":"hologram"})", Code::kBadRequest, "media");
  refused(R"({"type":"call_invite","chat_id":"42","call_id":"c","media":"audio","sdp":{}})", Code::kBadRequest, "sdp");
  refused(R"({"type":"call_invite","chat_id":"42","call_id":"c","media":"audio","sdp":")" +
              std::string(kMaxSdpBytes + 1, 'v') + "\"}",
          Code::kTooLarge, "sdp");
  CHECK(Parse(R"({"type":"call_invite","chat_id":"42","call_id":"c","media":"audio","sdp":")" +
              std::string(kMaxSdpBytes, 'v') + "\"}")
            .ok());
  refused(R"({"type":"call_answer","chat_id":"42","call_id":"c"})", Code::kBadRequest, "sdp");
  refused(R"({"type":"call_answer","chat_id":"42","call_id":"c","sdp":""})", Code::kBadRequest, "sdp");
  refused(R"({"type":"call_ice","chat_id":"42","call_id":"c"})", Code::kBadRequest, "candidate");
  refused(R"({"type":"call_ice","chat_id":"42","call_id":"c","candidate":{"candidate":"x"}})", Code::kBadRequest,
          "candidate");
  refused(R"({"type":"call_ice","chat_id":"42","call_id":"c","candidate":")" +
              std::string(kMaxCandidateBytes + 1, 'c') + "\"}",
          Code::kTooLarge, "candidate");
  refused(R"({"type":"call_ice","chat_id":"42","call_id":"c","candidate":"x","sdp_mline_index":-1})", Code::kBadRequest,
          "sdp_mline_index");
  refused(R"({"type":"call_ice","chat_id":"42","call_id":"c","candidate":"x","sdp_mid":1})", Code::kBadRequest,
          "sdp_mid");
  refused(R"({"type":"call_end","chat_id":"42","call_id":"c","reason":")" + std::string(kMaxCallReasonBytes + 1, 'r') +
              "\"}",
          Code::kTooLarge, "reason");
  refused(R"({"type":"call_hold","chat_id":"42","call_id":"c"})", Code::kBadRequest, "type");
}

TEST_CASE("calls: the event carries the checked fields and the sender, and reads back the same", "[relay][calls]") {
  CallSignal sig;
  REQUIRE(ParseText(R"({"type":"call_ice","chat_id":"42","call_id":"c-9","to_user_id":"7","candidate":"cand",)"
                    R"("sdp_mid":"audio","sdp_mline_index":0,"cursor":"999","extra":{"x":1}})",
                    &sig)
              .ok());
  std::string ev = CallEventJson(sig, 1001, 2002);
  CHECK(ev == R"({"type":"call_ice","chat_id":"42","call_id":"c-9","user_id":"1001","device_id":"2002",)"
              R"("to_user_id":"7","candidate":"cand","sdp_mid":"audio","sdp_mline_index":0})");
  CallSignal back;
  REQUIRE(ParseText(ev, &back).ok());
  CHECK(CallEventJson(back, 1001, 2002) == ev);

  REQUIRE(ParseText(R"({"type":"call_end","chat_id":"42","call_id":"c-9","reason":"hangup"})", &sig).ok());
  CHECK(CallEventJson(sig, 1001, 0) ==
        R"({"type":"call_end","chat_id":"42","call_id":"c-9","user_id":"1001","reason":"hangup"})");
}
