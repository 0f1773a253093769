#!/usr/bin/env bash
# bench/ingest.sh — durable ingest: acknowledged messages/s with 1 sender and with 100
# senders, each sender alone in its own room and keeping one message unacknowledged
# (closed loop: every ack releases the next send). An ack leaves chatd only after its
# group commit is durable (synchronous=FULL), so this is the relay's durable write rate.
# Target: >= 20,000 acked msgs/s with 100 senders.
#
# chatd runs pinned to CPU RELAY_CPU, the generator to GEN_CPU; REPEATS fresh relays per
# configuration (see bench/lib.sh); medians printed at the end.
#   bench/ingest.sh                 # 5 runs each of 1 and 100 senders, 10 s measured
#   REPEATS=3 DURATION=5 bench/ingest.sh
source "$(dirname "$0")/lib.sh"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
WINDOW="${WINDOW:-1}"

repeat_runs ingest-1 ingest --senders 1 --window "$WINDOW" --duration "$DURATION" --warmup "$WARMUP"
echo
repeat_runs ingest-100 ingest --senders 100 --window "$WINDOW" --duration "$DURATION" --warmup "$WARMUP"
log "results in $OUT"
