// cli/bench_idle.h — the `idle` scenario: open N WebSocket connections, authenticate them
// all, hold them, and report what they cost the server: RSS per connection (the RSS
// after they are up and settled, minus the RSS before the first one opened, divided by
// N) and CPU while they sit idle (pings answered). Connections reuse the setup's users'
// tokens round-robin. Runs on the calling (main) thread.
#pragma once

#include "base/status.h"
#include "cli/bench_report.h"
#include "cli/bench_setup.h"

namespace chatd::cli::bench {

struct IdleConfig {
  int connections = 10000;
  double settle_s = 2;  // after the last auth_ok, before the RSS sample
  double hold_s = 10;   // idle time measured for CPU
  int sources = 4;
  int max_connecting = 256;
  double connect_timeout_s = 300;
  bool progress = false;
};

Result<IdleResult> RunIdle(const Target& target, const Setup& setup, const IdleConfig& cfg);

}  // namespace chatd::cli::bench
