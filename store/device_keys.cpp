// Device keys for end-to-end encryption: the device_keys view (derived in store/views.cpp)
// read with the revocations applied, and the local one-time prekeys (the writer's).
#include "store/query_util.h"
#include "store/store.h"

namespace chatd::store {
namespace {

// A device is live unless removed, or revoked after its keys' last update (a logout of the
// device: not_before is INT64_MAX; a logout everywhere or a disabled account: every device
// whose keys predate it). Derived from two views, so independent of arrival order.
constexpr const char* kDeviceSelect =
    "SELECT d.user_id, d.device_id, d.id, d.origin, d.identity_key, d.spk_id, d.spk, d.spk_sig, d.removed, "
    "d.updated_at, (SELECT count(*) FROM prekeys p WHERE p.user_id=d.user_id AND p.device_id=d.device_id "
    "AND p.identity_key=d.identity_key AND p.claimed_at=0) FROM device_keys d ";
constexpr const char* kLive =
    " AND d.removed=0 AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.user_id=d.user_id AND "
    "(r.device_id=d.device_id OR r.device_id=0) AND r.not_before > d.updated_at)";

DeviceKeysRow ReadDevice(const Stmt& st) {
  DeviceKeysRow r;
  r.user_id = st.U64(0);
  r.device_id = st.U64(1);
  r.id = st.U64(2);
  r.origin = st.Text(3);
  r.identity_key = st.Text(4);
  r.spk_id = static_cast<uint32_t>(st.Int(5));
  r.spk = st.Text(6);
  r.spk_sig = st.Text(7);
  r.removed = st.Int(8) != 0;
  r.updated_at = st.Int(9);
  r.prekeys_left = st.Int(10);
  return r;
}

}  // namespace

Result<std::vector<DeviceKeysRow>> Queries::DevicesOf(uint64_t user_id) {
  return All<DeviceKeysRow>(
      db_, std::string(kDeviceSelect) + "WHERE d.user_id=?1" + kLive + " ORDER BY d.device_id",
      [&](Stmt& s) { s.Bind(1, user_id); }, &ReadDevice);
}

Result<std::optional<DeviceKeysRow>> Queries::DeviceKeys(uint64_t user_id, uint64_t device_id, bool live_only) {
  return One<DeviceKeysRow>(
      db_, std::string(kDeviceSelect) + "WHERE d.user_id=?1 AND d.device_id=?2" + (live_only ? kLive : ""),
      [&](Stmt& s) { s.Bind(1, user_id).Bind(2, device_id); }, &ReadDevice);
}

Result<std::optional<std::string>> Queries::PrekeyPublicKey(uint64_t user_id, uint64_t device_id,
                                                            std::string_view identity_key, uint32_t key_id) {
  return One<std::string>(
      db_, "SELECT public_key FROM prekeys WHERE user_id=? AND device_id=? AND key_id=? AND identity_key=?",
      [&](Stmt& s) { s.Bind(1, user_id).Bind(2, device_id).Bind(3, int64_t{key_id}).Bind(4, identity_key); },
      +[](const Stmt& s) { return s.Text(0); });
}

Status Writer::PutPrekeys(uint64_t user_id, uint64_t device_id, std::string_view identity_key,
                          const std::vector<PrekeyRow>& keys, int64_t now_ms) {
  for (const PrekeyRow& k : keys) {
    auto st = db_.Prepare(  // cached; each Stmt resets it when it goes
        "INSERT OR IGNORE INTO prekeys(user_id, device_id, key_id, identity_key, public_key, created_at) "
        "VALUES(?,?,?,?,?,?)");
    if (!st.ok()) return st.status();
    Status s = st->Bind(1, user_id)
                   .Bind(2, device_id)
                   .Bind(3, int64_t{k.key_id})
                   .Bind(4, identity_key)
                   .Bind(5, k.public_key)
                   .Bind(6, now_ms)
                   .Run();
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

Result<std::optional<PrekeyRow>> Writer::ClaimPrekey(uint64_t user_id, uint64_t device_id,
                                                     std::string_view identity_key, int64_t now_ms) {
  auto k = One<PrekeyRow>(
      db_,
      "SELECT key_id, public_key FROM prekeys WHERE user_id=? AND device_id=? AND identity_key=? AND claimed_at=0 "
      "ORDER BY key_id LIMIT 1",
      [&](Stmt& s) { s.Bind(1, user_id).Bind(2, device_id).Bind(3, identity_key); },
      +[](const Stmt& s) {
        return PrekeyRow{static_cast<uint32_t>(s.Int(0)), s.Text(1)};
      });
  if (!k.ok() || !k.value()) return k;
  auto st = db_.Prepare("UPDATE prekeys SET claimed_at=? WHERE user_id=? AND device_id=? AND key_id=?");
  if (!st.ok()) return st.status();
  Status s = st->Bind(1, now_ms).Bind(2, user_id).Bind(3, device_id).Bind(4, int64_t{k.value()->key_id}).Run();
  if (!s.ok()) return s;
  return k;
}

Status Writer::DropPrekeys(uint64_t user_id, uint64_t device_id, std::string_view keep_identity) {
  auto st = db_.Prepare("DELETE FROM prekeys WHERE user_id=? AND device_id=? AND identity_key<>?");
  if (!st.ok()) return st.status();
  return st->Bind(1, user_id).Bind(2, device_id).Bind(3, keep_identity).Run();
}

}  // namespace chatd::store
