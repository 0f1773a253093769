#!/usr/bin/env bash
# bench/fanout.sh — fan-out throughput: rooms of members, one sender per room, rising
# message rates (open loop) until chatd cannot keep up; per step: deliveries/s, latency
# from the intended send time, loss, and chatd CPU per delivery.
#   10 rooms x 100 members:  target >= 500,000 deliveries/s at <= 2 us chatd CPU each
#   100 rooms x 10 members:  target >= 200,000 deliveries/s at <= 5 us chatd CPU each
# Every member is a distinct user with one connection (1,010 and 1,100 users).
#
# chatd runs pinned to CPU RELAY_CPU, the generator to GEN_CPU; REPEATS fresh relays per
# shape (see bench/lib.sh); medians printed at the end.
#   bench/fanout.sh
#   RATES_10x100=1000,2000 RATES_100x10=4000 STEP=3 bench/fanout.sh
source "$(dirname "$0")/lib.sh"
STEP="${STEP:-5}"
RATES_10x100="${RATES_10x100:-500:8000:x2}"
RATES_100x10="${RATES_100x10:-2000:32000:x2}"

repeat_runs fanout-10x100 fanout --rooms 10 --members 100 --rates "$RATES_10x100" --duration "$STEP" --warmup 1
echo
repeat_runs fanout-100x10 fanout --rooms 100 --members 10 --rates "$RATES_100x10" --duration "$STEP" --warmup 1
log "results in $OUT"
