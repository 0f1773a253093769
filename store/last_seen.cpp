// Presence's last-seen times (the local table last_seen, schema 17): when each of this
// relay's users was last seen here. Local state, not a view: never replicated, not
// re-derived by RebuildViews. Written by the core in batches (relay/presence.cpp).
#include "store/query_util.h"
#include "store/store.h"

namespace chatd::store {

Result<std::vector<LastSeenRow>> Queries::LastSeen(int limit) {
  return All<LastSeenRow>(
      db_, "SELECT user_id, at FROM last_seen ORDER BY at DESC, user_id LIMIT ?", [&](Stmt& s) { s.Bind(1, limit); },
      +[](const Stmt& s) {
        return LastSeenRow{s.U64(0), s.Int(1)};
      });
}

Status Writer::PutLastSeen(const std::vector<LastSeenRow>& rows) {
  auto st =
      db_.Prepare("INSERT INTO last_seen(user_id, at) VALUES(?,?) ON CONFLICT(user_id) DO UPDATE SET at=excluded.at");
  if (!st.ok()) return st.status();
  for (const LastSeenRow& r : rows) {
    Status s = st->Bind(1, r.user_id).Bind(2, r.at).Run();
    st->Reset();
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace chatd::store
