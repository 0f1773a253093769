// cli/bench_fed.h — the federation scenarios of `chatctl bench` (issue 3's benchmarks):
//
//   catchup   relay A (--relay-dir) holds envelopes relay B (--peer-dir) lacks; the two are
//             pinned to each other (`chatctl peers add` on both, as an operator would) and
//             B's admin API is polled until B's vector covers the vector A had when the
//             link was made. Reports envelopes/s from the moment B shows the link up to the
//             last one applied, and both relays' CPU. With --envelopes N and no envelopes
//             on A yet, it first fills A with N acknowledged messages (closed loop,
//             --senders rooms of one sender each); --fill-only stops after that.
//   converge  several running relays (--relay-dir, repeated): polls their admin APIs until
//             every relay's vector covers the union of all their vectors as read at the
//             start (with no traffic: until the vectors are identical). Reports the time
//             from --since-ns (CLOCK_REALTIME, e.g. the moment a script healed a
//             partition) or from its own start.
//
// Both read each relay's data directory: chatd.toml (name), chatd.ports.json (addresses,
// pid), admin.token, relay.key. Vectors come from GET /admin/v1/federation (the core's
// vector snapshot: cheap to poll). Main thread only.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/cli.h"

namespace chatd::cli {

// Adds `bench catchup` and `bench converge` under `bench`.
void RegisterFedBench(CLI::App* bench, Globals& g);

}  // namespace chatd::cli
