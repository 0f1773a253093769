// Operator actions on the core thread (called through the admin API): disabling and
// enabling a user homed on this relay, and lifting the quarantine of an origin.
#include "base/json.h"
#include "base/log.h"
#include "relay/core.h"

namespace chatd {

Result<store::UserRow> Core::OpSetDisabled(uint64_t user_id, bool disabled) {
  auto& w = store_.writer();
  auto user = w.UserById(user_id);
  if (!user.ok()) return user.status();
  if (!user.value()) return NotFound("no such user");
  if (user.value()->relay != cfg_.relay_name) {
    return Forbidden("the user is homed on " + user.value()->relay + "; disable or enable it there");
  }
  if (user.value()->disabled == disabled) return std::move(*user.value());  // nothing to change
  // A user_disable envelope: every relay applies it (ops_users.cpp, ApplyAccessChange).
  json::JsonWriter body;
  body.BeginObject().Key("user_id").Id(user_id).Key("disabled").Bool(disabled).EndObject();
  crypto::Envelope env;
  env.kind = crypto::Kind::kUserDisable;
  env.author = 0;  // the relay's operator
  env.body = body.Take();
  auto keys_before = LiveKeyDevices(user_id);
  auto pos = Emit(env);
  if (!pos.ok()) return pos.status();
  ApplyAccessChange(env);
  AnnounceKeysRemoved(user_id, keys_before, *pos);
  auto after = w.UserById(user_id);
  if (!after.ok()) return after.status();
  if (!after.value()) return NotFound("no such user");
  log::Info(disabled ? "auth: user disabled by the operator" : "auth: user enabled by the operator",
            {{"user_id", user_id}, {"handle", after.value()->handle()}});
  return std::move(*after.value());
}

Status Core::OpLiftQuarantine(const std::string& origin) {
  if (!quarantined_.erase(origin)) return NotFound("origin '" + origin + "' is not quarantined");
  std::string list;
  for (const auto& q : quarantined_) list += (list.empty() ? "" : ",") + q;
  Status s = store_.writer().SetMeta("quarantined", list);
  if (!s.ok()) {
    batch_failed_ = true;  // the rollback reloads quarantined_ from the store
    return s;
  }
  {
    std::lock_guard<std::mutex> lock(snapshot_mu_);
    quarantined_snapshot_.assign(quarantined_.begin(), quarantined_.end());
  }
  // Its envelopes are accepted again from now on; what was refused meanwhile comes back
  // when a peer link re-sends the gap (acks show it) or reconnects.
  log::Warn("federation: quarantine lifted by the operator", {{"origin", origin}});
  return Status::Ok();
}

}  // namespace chatd
