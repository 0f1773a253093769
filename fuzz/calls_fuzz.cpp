// fuzz/calls_fuzz.cpp — libFuzzer target for ParseCallSignal (relay/calls.h), the reader
// of every call signalling frame from a client and every call event from a peer relay.
//
// Properties checked on every input that json::Parse accepts:
//   1. ParseCallSignal never crashes, leaks, reads out of bounds or hits UB.
//   2. What it accepts is within the documented bounds (call_id, sdp, candidate, sdp_mid,
//      sdp_mline_index, reason; media audio or video on an invite).
//   3. The event written from it (CallEventJson) reads back through ParseCallSignal to
//      the same event: what a relay forwards, its peers accept unchanged.
//
// Not built by default. Build and run it with clang from the repository root:
//
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize=pointer-overflow \
//       -I. fuzz/calls_fuzz.cpp relay/calls.cpp base/*.cpp -pthread -o /tmp/calls_fuzz
//   mkdir -p /tmp/calls_corpus && echo
//   '{"type":"call_ice","chat_id":"42","call_id":"c-1","candidate":"x","sdp_mline_index":0}' > /tmp/calls_corpus/a
//   /tmp/calls_fuzz -max_len=2048 -max_total_time=300 /tmp/calls_corpus
//
// (-fno-sanitize=pointer-overflow: see fuzz/json_fuzz.cpp.)
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "base/json.h"
#include "relay/calls.h"

using namespace chatd;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  json::Doc doc;
  if (!json::Parse(input, &doc).ok()) return 0;
  CallSignal sig;
  if (!ParseCallSignal(doc, &sig).ok()) return 0;
  if (!IsCallType(sig.type) || !sig.chat_id || !ValidCallId(sig.call_id)) std::abort();
  if (sig.sdp.size() > kMaxSdpBytes || sig.candidate.size() > kMaxCandidateBytes ||
      sig.sdp_mid.size() > kMaxSdpMidBytes || sig.reason.size() > kMaxCallReasonBytes || sig.sdp_mline_index < -1 ||
      sig.sdp_mline_index > kMaxSdpMLineIndex) {
    std::abort();
  }
  if (sig.type == "call_invite" && sig.media != "audio" && sig.media != "video") std::abort();
  if (sig.type == "call_answer" && sig.sdp.empty()) std::abort();
  const std::string event = CallEventJson(sig, 1001, 2002);
  json::Doc back_doc;
  CallSignal back;
  if (!json::Parse(event, &back_doc).ok() || !ParseCallSignal(back_doc, &back).ok()) std::abort();
  if (CallEventJson(back, 1001, 2002) != event) std::abort();
  return 0;
}
