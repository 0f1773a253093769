#!/usr/bin/env bash
# bench/bigrooms.sh — two rooms of 1,000 members each (999 receivers and the sender; a
# group holds at most limits.max_group_members = 1000): 2,000 connections from 4 source
# addresses join (connect and authenticate), then open-loop steps of messages/s into the
# two rooms. Issue 4's target: the 2,000 join in seconds, and 100 msgs/s (~100,000
# deliveries/s) holds p99 < 50 ms with nothing lost.
#
# chatd runs pinned to CPU RELAY_CPU, the generator to GEN_CPU; REPEATS fresh relays (see
# bench/lib.sh); medians printed at the end. The join time is `connect_s` in each run's JSON.
#   bench/bigrooms.sh
#   REPEATS=3 RATES=100,200,400 bench/bigrooms.sh
source "$(dirname "$0")/lib.sh"
STEP="${STEP:-5}"
RATES="${RATES:-100,200,400}"

repeat_runs bigrooms-2x1000 fanout --rooms 2 --members 999 --rates "$RATES" --duration "$STEP" --warmup 1
for f in "$OUT"/bigrooms-2x1000/run-*.json; do
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(f\"{sys.argv[1].rsplit('/',1)[1]}: {d['connections']} connections joined (connected + authenticated) in {d['connect_s']:.2f} s\")" "$f"
done
log "results in $OUT"
