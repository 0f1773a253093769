#!/usr/bin/env bash
# bench/partition.sh — convergence after a partition. Three relays in a chain a – b – c
# (no a – c link; a and c pin each other's key without a url, to verify what b relays).
# The a – b link is cut for PARTITION seconds (`chatctl peers remove` on
# both, as an operator would; the running relays reload and drop the link), so {a} and
# {b, c} are the two sides; meanwhile `chatctl bench ingest --rate RATE` runs on a and on
# c at once (RATE acknowledged messages/s on each side, SENDERS senders each alone in a
# room). Then the link is healed (`chatctl peers add` on both) and `chatctl bench converge`
# polls the three admin APIs until every relay holds every envelope any of them held, and
# the vectors are identical; the time is counted from the first `peers add`. Afterwards
# the three logs are compared by digest (origin, seq, header hash). Target (issue 3): all
# relays converge within 5 s of the heal, after 60 s at 500 msgs/s on each side.
#
# With 3 relays and 2 generators on 2 CPUs nothing is pinned; each result records what
# other processes used.
#   bench/partition.sh                      # 5 runs of a 60 s partition at 500 msgs/s a side
#   REPEATS=3 PARTITION=20 RATE=500 bench/partition.sh
source "$(dirname "$0")/fed_lib.sh"
PARTITION="${PARTITION:-60}"
RATE="${RATE:-500}"
SENDERS="${SENDERS:-10}"
NAME="partition-${PARTITION}s-$RATE"
INGEST=(ingest --senders "$SENDERS" --rate "$RATE" --duration "$PARTITION" --warmup 0 --drain 30)

mkdir -p "$OUT/$NAME"
make_fed_relay "$WORK/tpl-a" a 1
make_fed_relay "$WORK/tpl-b" b 2
make_fed_relay "$WORK/tpl-c" c 3
pin "$WORK/tpl-a" "$WORK/tpl-b"
pin "$WORK/tpl-b" "$WORK/tpl-a" url
pin "$WORK/tpl-b" "$WORK/tpl-c"
pin "$WORK/tpl-c" "$WORK/tpl-b" url
pin "$WORK/tpl-a" "$WORK/tpl-c"  # keys only: a and c verify each other's envelopes, relayed by b
pin "$WORK/tpl-c" "$WORK/tpl-a"
for r in a b c; do start_fed $r "$WORK/tpl-$r"; done
log "registering senders on a and on c (once)"
for r in a c; do
  "$CHATCTL" bench "${INGEST[@]}" --relay-dir "$WORK/tpl-$r" --setup-only --setup-file "$WORK/tpl-$r/setup.json" \
      --no-progress
done
"$CHATCTL" bench converge --relay-dir "$WORK/tpl-a" --relay-dir "$WORK/tpl-b" --relay-dir "$WORK/tpl-c" \
    --timeout 60 --no-progress >/dev/null
for r in c b a; do stop_fed $r; done

for n in $(seq 1 "$REPEATS"); do
  for r in a b c; do
    rm -rf "$WORK/run-$r"
    cp -a "$WORK/tpl-$r" "$WORK/run-$r"
  done
  wait_quiet
  for r in a b c; do start_fed $r "$WORK/run-$r"; done
  "$CHATCTL" bench converge --relay-dir "$WORK/run-a" --relay-dir "$WORK/run-b" --relay-dir "$WORK/run-c" \
      --timeout 60 --no-progress >/dev/null
  log "$NAME run $n/$REPEATS: cutting a – b, ${PARTITION}s of $RATE msgs/s on a and on c"
  unpin "$WORK/run-a" b
  unpin "$WORK/run-b" a
  rc_a=0
  rc_c=0
  nice -n "$NICE" "$CHATCTL" -o json bench "${INGEST[@]}" --relay-dir "$WORK/run-a" \
      --setup-file "$WORK/run-a/setup.json" --no-progress >"$WORK/ingest-a.json" &
  ing_a=$!
  nice -n "$NICE" "$CHATCTL" -o json bench "${INGEST[@]}" --relay-dir "$WORK/run-c" \
      --setup-file "$WORK/run-c/setup.json" --no-progress >"$WORK/ingest-c.json" &
  ing_c=$!
  wait "$ing_a" || rc_a=$?
  wait "$ing_c" || rc_c=$?
  [ "$rc_a$rc_c" = 00 ] || log "run $n: ingest exited $rc_a (a) / $rc_c (c)"
  log "healing a – b"
  heal_ns=$(date +%s%N)
  pin "$WORK/run-a" "$WORK/run-b"
  pin "$WORK/run-b" "$WORK/run-a" url
  rc=0
  nice -n "$NICE" "$CHATCTL" -o json bench converge --relay-dir "$WORK/run-a" --relay-dir "$WORK/run-b" \
      --relay-dir "$WORK/run-c" --since-ns "$heal_ns" --timeout 120 --no-progress >"$WORK/converge.json" || rc=$?
  [ "$rc" -eq 0 ] || log "run $n: chatctl bench converge exited $rc"
  digests=()
  for r in a b c; do digests+=("$(log_digest "$WORK/run-$r")"); done
  python3 - "$WORK/converge.json" "$WORK/ingest-a.json" "$WORK/ingest-c.json" "${digests[@]}" \
      >"$OUT/$NAME/run-$n.json" <<'EOF'
import json, sys
conv = json.load(open(sys.argv[1]))
for side, path in (("a", sys.argv[2]), ("c", sys.argv[3])):
    try:
        ing = json.load(open(path))
        step = ing["steps"][0]
        conv[f"accepted_on_{side}"] = step["acked"]
        conv[f"acked_per_s_on_{side}"] = step["acked_per_s"]
        conv[f"ack_p99_us_on_{side}"] = step["ack_latency"]["p99_us"]
        conv[f"errors_on_{side}"] = step["errors"]
    except (OSError, ValueError, KeyError, IndexError):
        conv[f"accepted_on_{side}"] = None
digests = sys.argv[4:]
conv["log_digests"] = " | ".join(digests)
conv["logs_identical"] = len(set(digests)) == 1
print(json.dumps(conv))
EOF
  log "run $n: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("converged %.3fs after the heal, identical vectors %.3fs, logs identical: %s" % (d["converged_s"], d["identical_s"], d["logs_identical"]))' "$OUT/$NAME/run-$n.json")"
  for r in c b a; do stop_fed $r; done
  for r in a b c; do rm -rf "$WORK/run-$r"; done
done
fed_summarize "$OUT/$NAME"
log "results in $OUT"
