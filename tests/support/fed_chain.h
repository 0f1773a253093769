// tests/support/fed_chain.h — three real relays federated in a chain A – B – C.
//
// A and C dial B (their [[peers]] entry for B has B's url); B pins A and C by key only
// (it is dialed, it does not dial); A and C pin each other by key only, so the envelopes
// of one that reach the other through B (gossip) verify. Every relay gets a fixed
// federation port (see FedOptions in fed_cluster.h), so B can be killed and restarted
// and A and C find it again at the url they pinned.
//
// FedChain::Start() inits the three data dirs, pins the peers with `chatctl peers add`
// while the relays are stopped (a plain file edit), starts B, then A and C, and waits
// until both links are up. Call it from the test's main thread (RelayProcess children
// die with the thread that started them). Not thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "tests/support/fed_cluster.h"
#include "tests/support/relay_process.h"

namespace chatd::test {

struct FedChain {
  std::string chatctl;
  std::unique_ptr<RelayProcess> a, b, c;
  std::string key_a, key_b, key_c;
  int port_a = 0, port_b = 0, port_c = 0;

  // base: options with chatd_bin/chatctl_bin set; names and node ids are given here.
  Status Start(const RelayOptions& base, const std::string& name_a = "eu1", const std::string& name_b = "us1",
               const std::string& name_c = "ap1", int link_timeout_ms = 15000);
  // "ws://127.0.0.1:<port_b>".
  std::string UrlB() const { return "ws://127.0.0.1:" + std::to_string(port_b); }
  std::vector<const RelayProcess*> all() const { return {a.get(), b.get(), c.get()}; }
  // Both links (A→B, C→B) up, as B's federation status shows them.
  bool WaitLinks(int timeout_ms) const;
};

}  // namespace chatd::test
