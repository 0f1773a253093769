#!/usr/bin/env bash
# bench/catchup.sh — federation catch-up: relay B missed ENVELOPES envelopes of relay A and
# catches up over one peer link. Target (issue 3): >= 15,000 envelopes/s.
#
# Once: relay "a" is filled with ENVELOPES acknowledged messages (chatctl bench catchup
# --fill-only: SENDERS senders, each alone in a room, over WebSocket), then stopped; relay
# "b" is a fresh relay that has never seen a. Each of REPEATS runs copies both, starts a
# and b (unpinned: b's worker threads verify signatures on one CPU while its core thread
# applies on the other; or b on PEER_CPU and a on ORIGIN_CPU, for the figure per core),
# and runs `chatctl bench catchup`, which pins each relay
# on the other with `chatctl peers add` (b dials a), polls b's /admin/v1/federation every
# 5 ms until b's vector covers a's, and reports envelopes/s from the moment b shows the
# link up to the last envelope applied, with both relays' CPU from /proc.
#   bench/catchup.sh                         # 5 runs, 100,000 envelopes
#   REPEATS=3 ENVELOPES=20000 bench/catchup.sh
#   PEER_CPU=0 ORIGIN_CPU=1 bench/catchup.sh # b confined to one CPU
source "$(dirname "$0")/fed_lib.sh"
ENVELOPES="${ENVELOPES:-100000}"
SENDERS="${SENDERS:-100}"
ORIGIN_CPU="${ORIGIN_CPU:-}"  # "" = not pinned
PEER_CPU="${PEER_CPU:-}"
NAME="catchup-$ENVELOPES${PEER_CPU:+-peer-on-cpu$PEER_CPU}"

mkdir -p "$OUT/$NAME"
make_fed_relay "$WORK/tpl-a" a 1
make_fed_relay "$WORK/tpl-b" b 2
start_fed a "$WORK/tpl-a"
log "filling a with $ENVELOPES messages (once)"
"$CHATCTL" bench catchup --relay-dir "$WORK/tpl-a" --envelopes "$ENVELOPES" --senders "$SENDERS" --fill-only \
    --no-progress
stop_fed a

for n in $(seq 1 "$REPEATS"); do
  rm -rf "$WORK/run-a" "$WORK/run-b"
  cp -a "$WORK/tpl-a" "$WORK/run-a"
  cp -a "$WORK/tpl-b" "$WORK/run-b"
  wait_quiet
  start_fed a "$WORK/run-a" "$ORIGIN_CPU"
  start_fed b "$WORK/run-b" "$PEER_CPU"
  log "$NAME run $n/$REPEATS: b (CPU ${PEER_CPU:-any}) catches up with a (CPU ${ORIGIN_CPU:-any})"
  rc=0
  nice -n "$NICE" "$CHATCTL" -o json bench catchup --relay-dir "$WORK/run-a" --peer-dir "$WORK/run-b" \
      ${ORIGIN_CPU:+--cpus "$ORIGIN_CPU"} --no-progress >"$OUT/$NAME/run-$n.json" || rc=$?
  [ "$rc" -eq 0 ] || log "run $n: chatctl bench catchup exited $rc (see the JSON)"
  da=$(log_digest "$WORK/run-a")
  db=$(log_digest "$WORK/run-b")
  [ "$da" = "$db" ] || log "run $n: logs differ after the catch-up: a $da, b $db"
  stop_fed b
  stop_fed a
  rm -rf "$WORK/run-a" "$WORK/run-b"
done
fed_summarize "$OUT/$NAME"
log "results in $OUT"
