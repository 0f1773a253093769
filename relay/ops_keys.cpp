// Device keys for end-to-end encryption (core thread only): publishing and removing a
// device's keys (device_keys envelopes, kind 5, system stream), one-time prekeys (local,
// at the user's home relay only) and claims, and the validity of a peer's device_keys
// envelope against its causal past.
//
// Federation of one-time prekeys: identity keys and signed prekeys replicate (every relay
// serves bundles); one-time prekeys never leave the user's home relay, which alone hands
// them out, each at most once (its core is the single writer, and a claim is a write). A
// claim elsewhere answers the bundle without one (X3DH allows it) and says where to claim.
#include <algorithm>

#include "base/json.h"
#include "base/log.h"
#include "relay/core.h"

namespace chatd {

namespace {

constexpr int64_t kMaxStoredPrekeys = 200;  // unclaimed, per device

std::string DeviceKeysBody(uint64_t device_id, const crypto::DeviceBundle& b) {
  json::JsonWriter w;
  w.BeginObject().Key("device_id").Id(device_id);
  w.Key("identity_key").Str(crypto::Base64Encode(b.identity_key));
  w.Key("signed_prekey").BeginObject().Key("key_id").Int(b.spk_id);
  w.Key("public_key").Str(crypto::Base64Encode(b.spk)).Key("signature").Str(crypto::Base64Encode(b.spk_sig));
  w.EndObject().EndObject();
  return w.Take();
}

}  // namespace

bool Core::ValidDeviceKeys(const crypto::Envelope& env) {
  // The author is a known user (their user_create is in the causal past: the origin only
  // emits for users it holds) publishing for the envelope's own device; the bundle's
  // lengths and signature are checked again here (store::ApplyDeviceKeys parses the same).
  if (env.chat_id != 0 || env.author == 0) return false;
  json::Doc body;
  if (!json::Parse(env.body, &body).ok() || !body.IsObject()) return false;
  auto device = json::GetId(body, "device_id");
  if (!device.ok() || std::to_string(*device) != env.device) return false;
  auto user = store_.writer().UserById(env.author);
  if (!user.ok() || !user.value()) return false;
  auto rm = body.FindMember("removed");
  if (rm != body.MemberEnd()) return rm->value.IsTrue() && body.MemberCount() == 2;
  return crypto::ParseDeviceBundle(body, 0).ok();
}

void Core::AfterDeviceKeys(const crypto::Envelope& env, const std::optional<store::DeviceKeysRow>& before,
                           uint64_t pos) {
  auto& w = store_.writer();
  uint64_t device_id = json::ParseId(env.device).value_or(0);
  auto now = w.DeviceKeys(env.author, device_id, false);
  if (!now.ok() || !now.value() || now.value()->id != env.id) return;  // an older envelope: nothing changed
  const store::DeviceKeysRow& d = *now.value();
  // One-time prekeys belong to the identity that published them.
  if (Status s = w.DropPrekeys(env.author, device_id, d.removed ? std::string_view() : d.identity_key); !s.ok()) {
    batch_failed_ = true;
    log::Error("keys: cannot drop stale one-time prekeys", {{"error", s.message()}});
    return;
  }
  const bool was = before && !before->removed;
  const char* change = nullptr;
  if (d.removed) {
    if (was) change = "removed";
  } else if (!was) {
    change = "added";
  } else if (before->identity_key != d.identity_key) {
    change = "identity_changed";
  } else {
    change = "signed_prekey_rotated";
  }
  if (!change) return;
  QueueKeysChanged(env.author, device_id, change, d.removed ? std::string_view() : std::string_view(d.identity_key),
                   d.updated_at, pos);
}

void Core::QueueKeysChanged(uint64_t user_id, uint64_t device_id, const char* change, std::string_view identity_key,
                            int64_t updated_at, uint64_t pos) {
  json::JsonWriter ev;
  ev.BeginObject().Key("type").Str("device_keys_changed").Key("user_id").Id(user_id);
  ev.Key("device_id").Id(device_id).Key("change").Str(change);
  ev.Key("identity_key").StrOrNull(identity_key);
  ev.Key("updated_at").Time(updated_at).Key("cursor").Id(pos).EndObject();
  auto audience = PresenceAudienceOf(user_id);  // everyone sharing a chat, and contacts
  auto users = std::make_shared<std::vector<uint64_t>>(*audience);
  users->push_back(user_id);  // the user's other devices
  Delivery del;
  del.type = Delivery::Type::kUsers;
  del.users = std::move(users);
  del.frame = MakeTextFrame(ev.View());
  del.cursor = pos;
  QueueDelivery(std::move(del));
}

std::vector<uint64_t> Core::LiveKeyDevices(uint64_t user_id) {
  std::vector<uint64_t> out;
  if (!user_id) return out;
  auto devices = store_.writer().DevicesOf(user_id);
  if (devices.ok()) {
    for (const auto& d : *devices) out.push_back(d.device_id);
  }
  return out;
}

void Core::AnnounceKeysRemoved(uint64_t user_id, const std::vector<uint64_t>& before, uint64_t pos) {
  if (before.empty()) return;
  std::vector<uint64_t> after = LiveKeyDevices(user_id);
  for (uint64_t device_id : before) {
    if (std::find(after.begin(), after.end(), device_id) == after.end()) {
      QueueKeysChanged(user_id, device_id, "removed", {}, clock_->NowMs(), pos);
    }
  }
}

Result<store::DeviceKeysRow> Core::OpPublishKeys(const Actor& actor, const crypto::DeviceBundle& b) {
  auto& w = store_.writer();
  const store::UserRow* user = UserOf(actor.user_id);
  if (!user) return NotFound("your account is not known at this relay yet; try again shortly");
  const bool home = user->relay == cfg_.relay_name;
  if (!b.one_time.empty() && !home) {
    return Status(Code::kConflict,
                  "one-time prekeys are held and handed out by your home relay '" + user->relay +
                      "' only: publish them there (identity key and signed prekey may be published here without them)",
                  "home_relay_only");
  }
  auto before = w.DeviceKeys(actor.user_id, actor.device_id, false);
  if (!before.ok()) return before.status();
  const std::string ik = crypto::Base64Encode(b.identity_key), spk = crypto::Base64Encode(b.spk),
                    sig = crypto::Base64Encode(b.spk_sig);
  const bool same = before.value() && !before.value()->removed && before.value()->identity_key == ik &&
                    before.value()->spk_id == b.spk_id && before.value()->spk == spk && before.value()->spk_sig == sig;
  const bool same_identity = before.value() && !before.value()->removed && before.value()->identity_key == ik;
  // One-time prekeys: check them all before changing anything.
  std::vector<store::PrekeyRow> fresh;
  for (size_t i = 0; i < b.one_time.size(); ++i) {
    const auto& k = b.one_time[i];
    std::string pk = crypto::Base64Encode(k.public_key);
    if (same_identity) {
      auto stored = w.PrekeyPublicKey(actor.user_id, actor.device_id, ik, k.key_id);
      if (!stored.ok()) return stored.status();
      if (stored.value()) {
        if (*stored.value() == pk) continue;  // sent again (a retried request): already held
        return Status(Code::kConflict,
                      "field 'one_time_prekeys[" + std::to_string(i) + "].key_id': key id " + std::to_string(k.key_id) +
                          " is already used by another key of this device",
                      "prekey_id_taken");
      }
    }
    fresh.push_back({k.key_id, std::move(pk)});
  }
  const int64_t left = same_identity ? before.value()->prekeys_left : 0;
  if (left + static_cast<int64_t>(fresh.size()) > kMaxStoredPrekeys) {
    return Status(Code::kConflict,
                  "a device holds at most " + std::to_string(kMaxStoredPrekeys) + " unclaimed one-time prekeys (" +
                      std::to_string(left) + " now); field 'one_time_prekeys' would exceed that",
                  "too_many_prekeys");
  }
  if (!same) {
    crypto::Envelope env = SystemEnvelope(crypto::Kind::kDeviceKeys, actor, DeviceKeysBody(actor.device_id, b));
    auto pos = Emit(env);
    if (!pos.ok()) return pos.status();
    AfterDeviceKeys(env, before.value(), *pos);
  }
  if (!fresh.empty()) {
    if (Status s = w.PutPrekeys(actor.user_id, actor.device_id, ik, fresh, clock_->NowMs()); !s.ok()) {
      batch_failed_ = true;
      return s;
    }
  }
  auto after = w.DeviceKeys(actor.user_id, actor.device_id, false);
  if (!after.ok()) return after.status();
  if (!after.value()) return Internal("device keys vanished after they were published");
  return std::move(*after.value());
}

Status Core::OpRemoveKeys(const Actor& actor) {
  auto before = store_.writer().DeviceKeys(actor.user_id, actor.device_id, false);
  if (!before.ok()) return before.status();
  if (!before.value()) return NotFound("this device has published no keys");
  if (before.value()->removed) return Status::Ok();  // already
  json::JsonWriter body;
  body.BeginObject().Key("device_id").Id(actor.device_id).Key("removed").Bool(true).EndObject();
  crypto::Envelope env = SystemEnvelope(crypto::Kind::kDeviceKeys, actor, body.Take());
  auto pos = Emit(env);
  if (!pos.ok()) return pos.status();
  AfterDeviceKeys(env, before.value(), *pos);
  return Status::Ok();
}

Result<PrekeyClaim> Core::OpClaimPrekey(uint64_t user_id, uint64_t device_id) {
  auto& w = store_.writer();
  auto d = w.DeviceKeys(user_id, device_id, true);
  if (!d.ok()) return d.status();
  if (!d.value()) return NotFound("this device has no published keys");
  PrekeyClaim c;
  c.device = std::move(*d.value());
  auto k = w.ClaimPrekey(user_id, device_id, c.device.identity_key, clock_->NowMs());
  if (!k.ok()) {
    batch_failed_ = true;
    return k.status();
  }
  c.one_time = std::move(k.value());
  if (c.one_time) c.device.prekeys_left = std::max<int64_t>(0, c.device.prekeys_left - 1);
  return c;
}

}  // namespace chatd
