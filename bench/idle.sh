#!/usr/bin/env bash
# bench/idle.sh — what idle connections cost: opens CONNECTIONS (10,000) WebSocket
# connections from several 127.0.0.x source addresses, authenticates them all (as USERS
# users, round-robin), lets them settle, and reports chatd's RSS growth per connection
# and its CPU while they sit idle for HOLD seconds (65: two rounds of the 30 s pings).
# Targets: <= 4 KB of chatd RSS per authenticated connection, and 19,000 idle
# authenticated connections (CONNECTIONS=19000; this machine caps a process at 20,000
# open files) at < 1% of a core. Idle CPU is the pings: one per connection per
# gateway.ping_interval (30 s), each answered with a pong by the generator.
#
# chatd runs pinned to CPU RELAY_CPU, the generator to GEN_CPU; REPEATS fresh relays (see
# bench/lib.sh); medians printed at the end. chatd's own file limit (20,000 here) bounds
# CONNECTIONS; limits.max_connections is set to 19,000 by make_relay.
#   bench/idle.sh
#   CONNECTIONS=18000 HOLD=60 bench/idle.sh
source "$(dirname "$0")/lib.sh"
CONNECTIONS="${CONNECTIONS:-10000}"
USERS="${USERS:-100}"
HOLD="${HOLD:-65}"

repeat_runs "idle-$CONNECTIONS" idle --connections "$CONNECTIONS" --users "$USERS" --hold "$HOLD" --settle 3 --sources 4
log "results in $OUT"
