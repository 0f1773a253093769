// Call signalling (relay/calls.h): the signal's checked shape, and the core operations
// that forward a signal to the sessions of a chat's members (core thread only).
//
// A signal goes to every member of the chat, or with to_user_id to that member only; the
// sender's own sessions always get it too (except the one that sent it), so a user's
// other devices learn that a call was placed, answered or ended elsewhere and stop
// ringing. Like typing it is ephemeral: forwarded to the peer relays, never stored or
// sequenced. A peer's signal is accepted only after the same checks against this relay's
// view (the sender is a member; no block between the pair) and rebuilt from its fields.
#include <algorithm>

#include "relay/calls.h"
#include "relay/core.h"

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

Result<std::shared_ptr<const std::vector<uint64_t>>> Core::CallAudience(
    const CallSignal& sig, uint64_t from, const std::shared_ptr<const std::vector<uint64_t>>& members) {
  // The pair a block would stand between: the two users of a direct chat, or the sender
  // and the member a group signal is addressed to.
  uint64_t other = DirectPeerOf(sig.chat_id, from);
  if (!other && sig.to_user_id != from) other = sig.to_user_id;
  if (sig.to_user_id && std::find(members->begin(), members->end(), sig.to_user_id) == members->end()) {
    return NotFound("to_user_id is not a member of this chat");
  }
  if (other) {
    if (Status s = CheckNotBlocked(from, other); !s.ok()) return s;
  }
  if (!sig.to_user_id) return members;
  auto users = std::make_shared<std::vector<uint64_t>>(1, from);
  if (sig.to_user_id != from) users->push_back(sig.to_user_id);
  return std::shared_ptr<const std::vector<uint64_t>>(std::move(users));
}

Status Core::OpCall(const Actor& actor, const CallSignal& sig, uint64_t skip_session) {
  auto members = MembersIncluding(sig.chat_id, actor.user_id);
  if (!members.ok()) return members.status();
  auto audience = CallAudience(sig, actor.user_id, *members);
  if (!audience.ok()) return audience.status();
  std::string event = CallEventJson(sig, actor.user_id, actor.device_id);
  DeliverEphemeral(*audience, skip_session, event);
  ForwardEphemeral(sig.chat_id, 0, std::move(event));
  return Status::Ok();
}

void Core::RemoteCall(const CallSignal& sig, uint64_t user_id, uint64_t device_id) {
  auto members = MembersOf(sig.chat_id);
  if (std::find(members->begin(), members->end(), user_id) == members->end()) return;
  auto audience = CallAudience(sig, user_id, members);
  if (!audience.ok()) return;
  DeliverEphemeral(*audience, 0, CallEventJson(sig, user_id, device_id));
}

}  // namespace chatd
