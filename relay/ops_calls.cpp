// Call signalling in the core (core thread only): forwarding a signal (relay/calls.h)
// to the sessions of a chat's members.
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
