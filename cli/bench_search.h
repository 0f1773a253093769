// cli/bench_search.h — the `search` scenario of `chatctl bench`: full-text search over REST
// (GET /api/v1/search) on a corpus the scenario writes itself.
//
//   1. Populate: N messages over the setup's rooms, message k in room k mod R, sent over
//      WebSocket by each room's sender (closed loop, `window` unacknowledged per room).
//      Each text is ~100 bytes of words drawn from a fixed vocabulary with a Zipf
//      distribution (a few words are in most messages, most words in few), the first word
//      capitalized, then one token unique to the message ("u<k in base 36>x"). The text
//      of message k depends only on k, so the scenario knows what every search must find.
//   2. Index: waits, with a deadline, until the relay's search index has caught up
//      (chatd_search_lag 0 and chatd_search_indexed_pos at or past the last message's
//      cursor, from GET /metrics; a relay without these metrics: until a search for the
//      last message's token finds it). Reports how fast it indexed.
//   3. Query: open loop at `rate` queries/s for `duration_s` over `clients` threads, each
//      with its own keep-alive HTTP connection. Query i is due at start + i / rate and its
//      latency counts from then, so a slow server cannot hide its queueing behind a busy
//      client (no coordinated omission). Each is made by a random member of a random room:
//        token   half: one message's unique token (upper case every other time); exactly
//                that message must come back (id, chat, content), has_more false.
//        common  a quarter: one or two frequent words; the room's 20 newest messages with
//                all of them, newest first, and has_more exactly when there are more (or
//                a partial page, the start of that one with has_more: the relay looks at
//                5,000 candidates of all chats at most; counted, not wrong).
//        page    a quarter: the same, scoped with chat_id and continued with before_id
//                (the second page).
//      Any other answer counts as wrong. Every member belongs to one room only, so a
//      result from another chat is wrong too.
//
// The corpus is deterministic: the same N gives the same texts on every run. A relay
// whose rooms already hold messages (a setup file reused on the same relay) is refused,
// since the expected results would not hold. RunSearch is called from the main thread; it
// starts and joins the query threads itself.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>

#include "base/status.h"
#include "cli/bench_report.h"
#include "cli/bench_setup.h"
#include "cli/bench_stats.h"

namespace chatd::cli::bench {

struct SearchConfig {
  uint64_t messages = 100000;
  double rate = 200;  // queries/s offered
  double duration_s = 10;
  int clients = 8;  // HTTP client threads
  int window = 64;  // populate: unacknowledged messages per room
  int sources = 4;
  int max_connecting = 256;
  double index_timeout_s = 300;  // most seconds to wait for the index after populating
  double drain_s = 10;           // queries not started this long after the window are skipped
  bool progress = false;
};

enum SearchKind { kSearchToken, kSearchCommon, kSearchPage, kSearchKinds };
const char* SearchKindName(int kind);

struct SearchResult {
  // Populating.
  uint64_t messages = 0;
  double populate_s = 0;
  double populate_server_cpu_s = 0;
  uint64_t last_cursor = 0;  // the log position of the last message
  // Indexing.
  bool index_metrics = false;       // chatd exports chatd_search_lag / _indexed_pos
  uint64_t lag_at_populated = 0;    // positions not yet indexed when the last ack came
  uint64_t max_lag = 0;             // highest lag seen while populating
  double catchup_s = 0;             // from the last ack to caught up
  double indexed_s = 0;             // from the first send to caught up
  double catchup_server_cpu_s = 0;  // chatd CPU from the last ack to caught up
  // Querying.
  uint64_t due = 0;      // queries due inside the window
  uint64_t skipped = 0;  // due but not started within drain_s after it (saturated)
  double seconds = 0;    // from the first query's due time to the last answer
  std::array<uint64_t, kSearchKinds> sent{}, answered{}, wrong{};
  uint64_t errors = 0;
  uint64_t partial = 0;                                // common: pages cut short by the relay's scan budget (not wrong)
  std::array<LatencyHistogram, kSearchKinds> latency;  // due time → answer read
  LatencyHistogram all;                                // every kind, from the due time
  LatencyHistogram service;                            // request written → answer read
  std::map<std::string, uint64_t> error_codes;         // "bad_request", "http 503", "transport: …"
  std::string first_wrong, first_error;
  double server_cpu_s = 0, gen_cpu_s = 0, other_cpu_s = 0;  // over `seconds`
  long rss_before_kb = 0, rss_indexed_kb = 0, rss_end_kb = 0, hwm_kb = 0;

  uint64_t total_sent() const;
  uint64_t total_answered() const;
  uint64_t total_wrong() const;
};

Result<SearchResult> RunSearch(const Target& target, const Setup& setup, const SearchConfig& cfg);

void PrintSearch(const Header& h, const SearchConfig& cfg, const SearchResult& r, bool json);

}  // namespace chatd::cli::bench
