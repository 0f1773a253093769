// store/query_util.h — helpers for the files that implement Queries. Internal to store/.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "store/db.h"

namespace chatd::store {

// The first row of a query, read by `read`; nullopt if there is none.
template <typename T, typename F>
Result<std::optional<T>> One(Db& db, std::string_view sql, F&& bind, T (*read)(const Stmt&)) {
  auto st = db.Prepare(sql);
  if (!st.ok()) return st.status();
  bind(*st);
  auto r = st->Step();
  if (!r.ok()) return r.status();
  if (!r.value()) return std::optional<T>();
  return std::optional<T>(read(*st));
}

// Every row of a query, read by `read`.
template <typename T, typename F>
Result<std::vector<T>> All(Db& db, std::string_view sql, F&& bind, T (*read)(const Stmt&)) {
  auto st = db.Prepare(sql);
  if (!st.ok()) return st.status();
  bind(*st);
  std::vector<T> out;
  for (;;) {
    auto r = st->Step();
    if (!r.ok()) return r.status();
    if (!r.value()) break;
    out.push_back(read(*st));
  }
  return out;
}

}  // namespace chatd::store
