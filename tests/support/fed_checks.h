// tests/support/fed_checks.h — Catch2 checks shared by the federation integration tests
// (tests/integration/federation_*.cpp): convergence within a deadline, identical logs
// (the set of (origin, seq, header hash), gap-free per origin), identical per-chat
// history through each relay's REST API. Header-only; test threads only (Catch macros).
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "base/time.h"
#include "tests/support/fed_cluster.h"
#include "tests/support/fixtures.h"
#include "tests/support/json.h"
#include "tests/support/relay_process.h"
#include "tests/support/ws_session.h"

namespace chatd::test {

// One event that has to cross one or two relays.
constexpr int kFedEventMs = 10000;

#define REQUIRE_MSG(cond, msg)    \
  do {                            \
    if (!(cond)) FAIL(msg);       \
  } while (0)

// Waits (bounded) until every relay has the same vector and envelope count; the time it
// took in ms. Fails the test with the relays' last status otherwise.
inline int64_t RequireConverged(const std::vector<const RelayProcess*>& relays, int timeout_ms,
                                int64_t min_envelopes = 0) {
  int64_t t0 = MonoMs();
  std::string why;
  bool ok = WaitConverged(relays, timeout_ms, &why, min_envelopes);
  if (!ok) FAIL("relays did not converge within " << timeout_ms << " ms: " << why);
  return MonoMs() - t0;
}

// Every relay's log holds the same (origin, seq, header hash) set, each origin's seqs are
// 1..n without a gap, and no (origin, seq) appears twice. Returns the first relay's log.
inline std::vector<LogRow> RequireIdenticalLogs(const std::vector<const RelayProcess*>& relays) {
  std::vector<std::vector<LogRow>> logs;
  for (const RelayProcess* r : relays) {
    auto rows = ReadEnvelopeLog(r->dir() + "/chatd.db");
    if (!rows.ok()) FAIL("reading " << r->name() << "'s log: " << rows.status().message());
    logs.push_back(std::move(rows).value());
  }
  auto first = LogKeys(logs[0]);
  for (size_t i = 0; i < relays.size(); ++i) {
    INFO("log of " << relays[i]->name());
    std::map<std::string, std::vector<uint64_t>> seqs;
    std::set<std::pair<std::string, uint64_t>> seen;
    for (const auto& r : logs[i]) {
      seqs[r.origin].push_back(r.seq);
      CHECK(seen.emplace(r.origin, r.seq).second);
    }
    for (auto& [origin, s] : seqs) {
      std::sort(s.begin(), s.end());
      INFO("origin " << origin);
      CHECK(s.front() == 1);
      CHECK(s.back() == s.size());
    }
    auto keys = LogKeys(logs[i]);
    if (keys != first) {
      std::ostringstream d;
      int shown = 0;
      for (const auto& k : keys) {
        if (!first.count(k) && shown++ < 5) d << " only on " << relays[i]->name() << ": " << std::get<0>(k) << "#" << std::get<1>(k);
      }
      for (const auto& k : first) {
        if (!keys.count(k) && shown++ < 10) d << " only on " << relays[0]->name() << ": " << std::get<0>(k) << "#" << std::get<1>(k);
      }
      FAIL("logs differ between " << relays[0]->name() << " (" << first.size() << ") and " << relays[i]->name() << " ("
                                  << keys.size() << "):" << d.str());
    }
  }
  return logs[0];
}

// What two relays must agree on for one history message.
inline std::string HistoryKey(const Json& m) {
  return m.Str("message_id") + "|" + m.Str("sender_id") + "|" + m.Str("content") + "|" + Dump(m["is_edited"]) + "|" +
         Dump(m["is_deleted"]) + "|" + Dump(m["reactions"]);
}

// The chat's whole history through each relay's REST API (with `token`, which every
// relay must accept): the same messages in the same order everywhere, ids strictly
// decreasing (newest first), no message twice. Returns the first relay's history.
//
// Waits (up to `timeout_ms`) for the histories to agree: REST history shows a message only
// once its batch is durable, a little after the envelope is committed, and it is committed
// envelopes that RequireConverged's counts and vectors see.
inline std::vector<Json> RequireIdenticalHistory(const std::vector<const RelayProcess*>& relays,
                                                 const std::string& token, const std::string& chat,
                                                 int timeout_ms = 5000) {
  std::vector<std::vector<Json>> all;
  std::string why;
  auto differ = [&] {
    all.clear();
    std::vector<std::string> first_keys;
    for (size_t i = 0; i < relays.size(); ++i) {
      auto h = History(relays[i]->api(), token, chat);
      if (!h.ok()) FAIL("history on " << relays[i]->name() << ": " << h.status().message());
      std::vector<std::string> keys;
      for (const auto& m : *h) keys.push_back(HistoryKey(m));
      all.push_back(*h);
      if (i == 0) {
        first_keys = keys;
      } else if (keys != first_keys) {
        size_t at = 0;
        while (at < keys.size() && at < first_keys.size() && keys[at] == first_keys[at]) ++at;
        std::ostringstream out;
        out << "history of chat " << chat << " differs: " << relays[0]->name() << " has " << first_keys.size() << ", "
            << relays[i]->name() << " has " << keys.size() << " messages; first difference at #" << at << ": '"
            << (at < first_keys.size() ? first_keys[at] : "(end)") << "' vs '"
            << (at < keys.size() ? keys[at] : "(end)") << "'";
        why = out.str();
        return true;
      }
    }
    return false;
  };
  if (!WaitFor([&] { return !differ(); }, timeout_ms, 50)) FAIL(why);
  for (size_t i = 0; i < relays.size(); ++i) {
    std::set<std::string> ids;
    uint64_t prev = UINT64_MAX;
    for (const auto& m : all[i]) {
      auto id = IdOf(m["message_id"]);
      INFO("history on " << relays[i]->name() << ": " << m.text());
      REQUIRE(id.has_value());
      CHECK(*id < prev);
      prev = *id;
      CHECK(ids.insert(m.Str("message_id")).second);
    }
  }
  return all.front();
}

// new_message events for message `id` still queued in a session.
inline size_t CountNewMessage(WsSession& s, const std::string& id) {
  size_t n = 0;
  for (const auto& e : s.pending()) {
    if (e.type() == "new_message" && StrOf(At(e.root(), "message.message_id")) == id) ++n;
  }
  return n;
}

}  // namespace chatd::test
