#!/usr/bin/env bash
# bench/latency.sh — send-to-receive latency: one sender posts to a room at a fixed
# 1,000 msgs/s (open loop) and another member receives; latency runs from each message's
# intended send time to its arrival (no coordinated omission), through the group commit.
# Target: p99 < 10 ms at 1,000 msgs/s.
#
# chatd runs pinned to CPU RELAY_CPU, the generator to GEN_CPU; REPEATS fresh relays (see
# bench/lib.sh); medians printed at the end.
#   bench/latency.sh                # 5 runs of 10 s measured at 1,000 msgs/s
#   RATE=500 DURATION=30 bench/latency.sh
source "$(dirname "$0")/lib.sh"
RATE="${RATE:-1000}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"

repeat_runs "latency-$RATE" latency --rooms 1 --members 1 --rate "$RATE" --duration "$DURATION" --warmup "$WARMUP"
log "results in $OUT"
