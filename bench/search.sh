#!/usr/bin/env bash
# bench/search.sh — full-text search over REST (GET /api/v1/search). ROOMS rooms of MEMBERS
# members (10 x 10); each run first writes MESSAGES (100,000) messages of ~100 bytes over
# WebSocket (words of a Zipf-distributed vocabulary plus a token unique to each message),
# waits for chatd's search index to catch up (chatd_search_lag in /metrics), then searches
# at RATE (200) queries/s for DURATION (10) s over CLIENTS (8) keep-alive HTTP connections,
# open loop: latency counts from each query's due time. Half the queries look up one
# message's token, the rest one or two frequent words (the 20 newest matches, or the next
# page within the chat); every answer is checked against the corpus. Reports how fast the
# index caught up, query latency, wrong answers and chatd CPU per query.
#
# chatd runs pinned to CPU RELAY_CPU, the generator to GEN_CPU; REPEATS fresh relays (see
# bench/lib.sh), each written anew from the same template (users and rooms only); the
# medians of every figure are printed at the end (fed_summarize: bench/summarize.py knows
# only the traffic and idle shapes). CLIENTS above chatd's api.threads (32) wait for a free
# API thread.
#   bench/search.sh
#   REPEATS=3 MESSAGES=20000 RATE=500 bench/search.sh
source "$(dirname "$0")/fed_lib.sh"
ROOMS="${ROOMS:-10}"
MEMBERS="${MEMBERS:-10}"
MESSAGES="${MESSAGES:-100000}"
RATE="${RATE:-200}"
DURATION="${DURATION:-10}"
CLIENTS="${CLIENTS:-8}"
NAME="search-${ROOMS}x${MEMBERS}-$MESSAGES-at-$RATE"

template "$NAME" search --rooms "$ROOMS" --members "$MEMBERS"
for n in $(seq 1 "$REPEATS"); do
  run_once "$NAME" "$n" search --rooms "$ROOMS" --members "$MEMBERS" --messages "$MESSAGES" --rate "$RATE" \
      --duration "$DURATION" --clients "$CLIENTS"
done
fed_summarize "$OUT/$NAME"
log "results in $OUT"
