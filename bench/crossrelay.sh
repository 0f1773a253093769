#!/usr/bin/env bash
# bench/crossrelay.sh — cross-relay delivery latency: a sender on relay a posts to a room at
# RATE msgs/s (open loop); the other member receives on relay b, a peer of a on loopback
# (a -> b: a's group commit, the push on the peer link, b's signature check on a worker,
# b's apply and commit, b's fan-out). Latency runs from each message's intended send time
# to its arrival. Each repeat also runs the same room with the receiver on a (same relay,
# same two relays running) so the added latency is measured, not assumed. Target (issue 3):
# cross-relay delivery adds < 5 ms p99 over the link's own latency (loopback: ~0).
#
# Both relays run on RELAY_CPU (so a and b do not pay a cross-CPU wake-up for each
# envelope; the generator's hop to chatd is the same as bench/latency.sh's), the generator
# on GEN_CPU. The sender and receiver users are registered on a; the receiver connects to
# b with a's token.
#   bench/crossrelay.sh                 # 5 x (same relay, cross relay), 10 s at 1,000 msgs/s
#   RATE=500 DURATION=30 bench/crossrelay.sh
source "$(dirname "$0")/fed_lib.sh"
RATE="${RATE:-1000}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
ARGS=(latency --rooms 1 --members 1 --rate "$RATE" --duration "$DURATION" --warmup "$WARMUP")

make_fed_relay "$WORK/tpl-a" a 1
make_fed_relay "$WORK/tpl-b" b 2
pin "$WORK/tpl-a" "$WORK/tpl-b"
pin "$WORK/tpl-b" "$WORK/tpl-a" url
start_fed a "$WORK/tpl-a"
start_fed b "$WORK/tpl-b"
log "registering users and creating the room on a (once)"
"$CHATCTL" bench "${ARGS[@]}" --relay-dir "$WORK/tpl-a" --setup-only --setup-file "$WORK/tpl-a/setup.json" \
    --no-progress
"$CHATCTL" bench converge --relay-dir "$WORK/tpl-a" --relay-dir "$WORK/tpl-b" --timeout 60 --no-progress >/dev/null
stop_fed b
stop_fed a

for n in $(seq 1 "$REPEATS"); do
  for where in same cross; do
    name="$where-relay-$RATE"
    mkdir -p "$OUT/$name"
    rm -rf "$WORK/run-a" "$WORK/run-b"
    cp -a "$WORK/tpl-a" "$WORK/run-a"
    cp -a "$WORK/tpl-b" "$WORK/run-b"
    wait_quiet
    start_fed a "$WORK/run-a" "$RELAY_CPU"
    start_fed b "$WORK/run-b" "$RELAY_CPU"
    "$CHATCTL" bench converge --relay-dir "$WORK/run-a" --relay-dir "$WORK/run-b" --timeout 60 --no-progress >/dev/null
    extra=()
    [ "$where" = cross ] && extra=(--receive-relay-dir "$WORK/run-b")
    log "$name run $n/$REPEATS: receiver on $([ "$where" = cross ] && echo b || echo a)"
    rc=0
    nice -n "$NICE" taskset -c "$GEN_CPU" "$CHATCTL" -o json bench "${ARGS[@]}" --relay-dir "$WORK/run-a" \
        --setup-file "$WORK/run-a/setup.json" "${extra[@]}" --no-progress >"$OUT/$name/run-$n.json" || rc=$?
    [ "$rc" -eq 0 ] || log "$name run $n: chatctl bench exited $rc (see the JSON)"
    stop_fed b
    stop_fed a
    rm -rf "$WORK/run-a" "$WORK/run-b"
  done
done
for where in same cross; do
  python3 "$ROOT/bench/summarize.py" "$OUT/$where-relay-$RATE" | tee "$OUT/$where-relay-$RATE/summary.txt"
done
log "results in $OUT"
