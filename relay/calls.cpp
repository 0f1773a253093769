// Call signalling: the checked shape of one signal (relay/calls.h). Pure functions.
#include "relay/calls.h"

#include <algorithm>

namespace chatd {

namespace {

// A string field: absent, null or "" leave *out empty; required ones must be non-empty.
Status ReadString(const json::Value& obj, const char* key, size_t max_bytes, bool required, std::string* out) {
  auto v = json::GetOptString(obj, key, max_bytes);
  if (!v.ok()) return v.status();
  if (v.value()) out->assign(**v);
  if (required && out->empty()) return BadRequest(std::string("field '") + key + "' is required");
  return Status::Ok();
}

}  // namespace

bool IsCallType(std::string_view type) {
  return type == "call_invite" || type == "call_ringing" || type == "call_answer" || type == "call_ice" ||
         type == "call_reject" || type == "call_end";
}

bool ValidCallId(std::string_view call_id) {
  if (call_id.empty() || call_id.size() > kMaxCallIdBytes) return false;
  return std::all_of(call_id.begin(), call_id.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

Status ParseCallSignal(const json::Value& obj, CallSignal* out) {
  CallSignal sig;
  std::string_view type = json::TypeOf(obj);
  if (!IsCallType(type)) return BadRequest("field 'type' must be a call signal type");
  sig.type = type;
  auto chat = json::GetId(obj, "chat_id");
  if (!chat.ok()) return chat.status();
  sig.chat_id = *chat;
  if (Status s = ReadString(obj, "call_id", kMaxCallIdBytes, true, &sig.call_id); !s.ok()) return s;
  if (!ValidCallId(sig.call_id)) return BadRequest("field 'call_id' must be letters, digits, '_' or '-'");
  auto to = json::GetOptId(obj, "to_user_id");
  if (!to.ok()) return to.status();
  sig.to_user_id = to.value().value_or(0);
  if (type == "call_invite") {
    if (Status s = ReadString(obj, "media", 16, true, &sig.media); !s.ok()) return s;
    if (sig.media != "audio" && sig.media != "video") return BadRequest("field 'media' must be audio or video");
    if (Status s = ReadString(obj, "sdp", kMaxSdpBytes, false, &sig.sdp); !s.ok()) return s;
  } else if (type == "call_answer") {
    if (Status s = ReadString(obj, "sdp", kMaxSdpBytes, true, &sig.sdp); !s.ok()) return s;
  } else if (type == "call_ice") {
    auto candidate = json::GetString(obj, "candidate", kMaxCandidateBytes);  // "" ends the candidates
    if (!candidate.ok()) return candidate.status();
    sig.candidate = *candidate;
    if (Status s = ReadString(obj, "sdp_mid", kMaxSdpMidBytes, false, &sig.sdp_mid); !s.ok()) return s;
    auto index = json::GetOptInt(obj, "sdp_mline_index", 0, kMaxSdpMLineIndex);
    if (!index.ok()) return index.status();
    sig.sdp_mline_index = index.value().value_or(-1);
  } else if (type == "call_reject" || type == "call_end") {
    if (Status s = ReadString(obj, "reason", kMaxCallReasonBytes, false, &sig.reason); !s.ok()) return s;
  }
  *out = std::move(sig);
  return Status::Ok();
}

std::string CallEventJson(const CallSignal& sig, uint64_t user_id, uint64_t device_id) {
  json::JsonWriter w;
  w.BeginObject().Key("type").Str(sig.type).Key("chat_id").Id(sig.chat_id).Key("call_id").Str(sig.call_id);
  w.Key("user_id").Id(user_id);
  if (device_id) w.Key("device_id").Id(device_id);
  if (sig.to_user_id) w.Key("to_user_id").Id(sig.to_user_id);
  if (!sig.media.empty()) w.Key("media").Str(sig.media);
  if (!sig.sdp.empty()) w.Key("sdp").Str(sig.sdp);
  if (sig.type == "call_ice") {
    w.Key("candidate").Str(sig.candidate);
    if (!sig.sdp_mid.empty()) w.Key("sdp_mid").Str(sig.sdp_mid);
    if (sig.sdp_mline_index >= 0) w.Key("sdp_mline_index").Int(sig.sdp_mline_index);
  }
  if (!sig.reason.empty()) w.Key("reason").Str(sig.reason);
  w.EndObject();
  return w.Take();
}

}  // namespace chatd
