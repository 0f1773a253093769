// relay/calls.h — call signalling (WebRTC-style): the checked shape of one signal.
//
// A call signal (invite with an SDP offer, ringing, answer, ICE candidate, reject, end)
// is ephemeral: the relay forwards it to the sessions of a chat's members, on this relay
// and through the peer links, and keeps no call state (Core::OpCall, relay/ops_calls.cpp;
// docs/WEBSOCKET.md "Call signalling"). The same reader checks a client's frame (gateway
// thread) and a peer relay's event (core thread), so a peer's signal is rebuilt from the
// fields checked here, never passed through (fuzz/calls_fuzz.cpp). Pure functions
// (relay/calls.cpp); thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/json.h"
#include "base/status.h"

namespace chatd {

inline constexpr size_t kMaxCallIdBytes = 64;       // [A-Za-z0-9_-]
inline constexpr size_t kMaxSdpBytes = 16384;       // an SDP offer or answer
inline constexpr size_t kMaxCandidateBytes = 1024;  // one ICE candidate line
inline constexpr size_t kMaxSdpMidBytes = 64;
inline constexpr int64_t kMaxSdpMLineIndex = 65535;
inline constexpr size_t kMaxCallReasonBytes = 64;

struct CallSignal {
  std::string type;  // call_invite, call_ringing, call_answer, call_ice, call_reject, call_end
  uint64_t chat_id = 0;
  std::string call_id;           // chosen by the caller's client; opaque to the relay
  uint64_t to_user_id = 0;       // 0: every member of the chat
  std::string media;             // call_invite: "audio" or "video"
  std::string sdp;               // call_invite (optional), call_answer (required)
  std::string candidate;         // call_ice ("" = end of candidates)
  std::string sdp_mid;           // call_ice, optional
  int64_t sdp_mline_index = -1;  // call_ice, optional (-1: absent)
  std::string reason;            // call_reject, call_end, optional
};

// One of the six signal types above.
bool IsCallType(std::string_view type);
// 1 to kMaxCallIdBytes bytes of [A-Za-z0-9_-].
bool ValidCallId(std::string_view call_id);
// Reads the signal named by obj's "type" and the fields that type takes (others are
// ignored): bad_request naming a missing, mistyped or invalid field; too_large for one
// over its bound.
Status ParseCallSignal(const json::Value& obj, CallSignal* out);
// The event for members' sessions: the signal's fields, and who sent it from which device.
std::string CallEventJson(const CallSignal& sig, uint64_t user_id, uint64_t device_id);

}  // namespace chatd
