// cli/bench_fed_relay.h — what the federation scenarios (bench_fed.h) know about a running
// relay, from its data directory, and how they watch it: version vectors and link states
// polled from GET /admin/v1/federation over one keep-alive connection. Internal to
// cli/bench_fed.cpp and cli/bench_catchup.cpp; main thread only.
#pragma once

#include <httplib.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"

namespace chatd::cli::bench {

using Vector = std::map<std::string, uint64_t>;  // origin -> highest contiguous seq applied

struct FedRelay {
  std::string dir, name, api, gateway, federation, admin, admin_token, public_key;
  int pid = 0;
  std::unique_ptr<httplib::Client> client;  // the admin API, keep-alive
};

// A running relay: DIR/chatd.toml, DIR/chatd.ports.json, DIR/admin.token, DIR/relay.key.
Result<FedRelay> OpenRelay(const std::string& dir);

struct FedStatus {
  Vector vector;
  std::map<std::string, bool> connected;  // peer name -> link up
};
Result<FedStatus> PollFederation(FedRelay& r);

// Envelopes in `want` that `have` lacks (origin `skip` not counted).
uint64_t Missing(const Vector& have, const Vector& want, const std::string& skip = "");
uint64_t Total(const Vector& v);
void Merge(Vector* into, const Vector& v);
std::string VectorText(const Vector& v);

// Runs this chatctl binary with `args`; its stdout and stderr go to ours (stderr). An
// error unless it exits 0.
Status RunSelf(const std::vector<std::string>& args);
// Pins `peer` on `r`: `chatctl -c r/chatd.toml peers add PEER [--url ws://FED] --key KEY`.
Status PinPeer(const FedRelay& r, const FedRelay& peer, bool with_url);

// CLOCK_REALTIME in ns (comparable across processes, for --since-ns).
int64_t RealNs();

}  // namespace chatd::cli::bench
