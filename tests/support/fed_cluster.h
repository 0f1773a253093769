// tests/support/fed_cluster.h — federation helpers for integration tests: fixed
// federation ports, chatctl peers/keys/federation status, the admin status, a read-only
// look at a relay's envelope log, and bounded convergence waits.
//
// Federated relays need a federation port that survives a restart (a peer dials the
// url it has pinned), so FedOptions() picks a free port once (bind port 0, read it,
// close it) and writes it to listen.federation before the first start. chatctl is run
// as a child process (RunCommand), exactly as an operator would.
//
// ReadEnvelopeLog() opens DIR/chatd.db read-only with the SQLite C API. The test binary
// does not link SQLite (chatd_test_support links only chatd_base and chatd_crypto), so
// the library is loaded with dlopen("libsqlite3.so.0") — the same shared library chatd
// itself runs with. Everything here is thread-safe except where a RelayProcess is
// mutated (see relay_process.h).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "base/status.h"
#include "tests/support/json.h"
#include "tests/support/relay_process.h"

namespace chatd::test {

// A TCP port on 127.0.0.1 that was free a moment ago: a random one below the kernel's
// ephemeral range (so no outgoing connection takes it before the relay binds it).
int PickFreePort();

// opts with listen.federation = 127.0.0.1:<port> (port 0: PickFreePort()).
RelayOptions FedOptions(RelayOptions opts, int port = 0);
// The fixed federation port FedOptions() chose (0 if none).
int FedPortOf(const RelayOptions& opts);

// `chatctl -c DIR/chatd.toml ARGS...` with the chatctl binary `chatctl`.
CommandResult Chatctl(const std::string& chatctl, const RelayProcess& relay,
                      const std::vector<std::string>& args, int timeout_ms = 20000);

// `chatctl keys show`: "ed25519:…".
Result<std::string> PublicKeyOf(const std::string& chatctl, const RelayProcess& relay);
// `chatctl peers add NAME [--url URL] --key KEY` (url "" = key only).
Status PeerAdd(const std::string& chatctl, const RelayProcess& relay, const std::string& name,
               const std::string& url, const std::string& key);
// `chatctl peers remove NAME`.
Status PeerRemove(const std::string& chatctl, const RelayProcess& relay, const std::string& name);
// `chatctl -o json federation status`, parsed.
Result<Json> FederationStatus(const std::string& chatctl, const RelayProcess& relay);
// "ws://127.0.0.1:PORT" of a relay's federation listener.
std::string FedUrl(const RelayProcess& relay);

// GET /admin/v1/status ("data" object): relay, envelopes, vector{origin: seq}.
struct AdminStatus {
  std::string relay;
  int64_t envelopes = -1;
  std::map<std::string, uint64_t> vector;
  std::string text;
};
Result<AdminStatus> GetAdminStatus(const RelayProcess& relay);
// GET /admin/v1/federation, parsed "data" (refused_envelopes, quarantined, peers…).
Result<Json> GetAdminFederation(const RelayProcess& relay);

// One row of the envelope log.
struct LogRow {
  int64_t pos = 0;
  std::string origin;
  uint64_t seq = 0;
  uint64_t id = 0;
  uint64_t chat_id = 0;
  int kind = 0;
  std::string header_hash_hex;
  std::string body;  // the payload; "" once erased
};
// Every envelope of DIR/chatd.db, in pos order (read-only; safe while chatd runs).
Result<std::vector<LogRow>> ReadEnvelopeLog(const std::string& db_path);
// Runs SQL on a stopped relay's store (tests that tamper with it on purpose).
Status ExecSql(const std::string& db_path, const std::string& sql);
// The log as a set of (origin, seq, header hash hex).
std::set<std::tuple<std::string, uint64_t, std::string>> LogKeys(const std::vector<LogRow>& rows);

// Waits until every relay's admin status shows the same vector and envelope count, with
// at least `min_envelopes` envelopes. On timeout *why describes the last difference.
bool WaitConverged(const std::vector<const RelayProcess*>& relays, int timeout_ms,
                   std::string* why, int64_t min_envelopes = 0);
// Waits until federation status of `relay` shows peer `peer` connected.
bool WaitLinked(const std::string& chatctl, const RelayProcess& relay, const std::string& peer,
                int timeout_ms);

// The value of an unlabelled sample `name` in GET /metrics (kNotFound if absent).
Result<int64_t> MetricValue(const RelayProcess& relay, const std::string& name);

// Appears at least `count` times in chatd.log (substring match on each line).
int CountLogLines(const RelayProcess& relay, const std::string& needle);
bool WaitLogLines(const RelayProcess& relay, const std::string& needle, int count, int timeout_ms);

}  // namespace chatd::test
