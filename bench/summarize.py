#!/usr/bin/env python3
"""Medians and spread of repeated `chatctl -o json bench …` runs.

Usage: bench/summarize.py DIR        (reads DIR/run-*.json)
       bench/summarize.py --json DIR (the same numbers as one JSON object)

For the traffic scenarios (ingest, fanout, latency) every step is summarized by its
offered rate across the runs that reached it: deliveries/s or acked/s, latency
percentiles, loss, server CPU per delivery or message (in all and by chatd thread), and
CPU used by the generator and by other processes. For idle: server bytes per connection and CPU. Each figure is printed
as "median (min–max)" over the runs.
"""
import glob
import json
import os
import statistics
import sys


def load(directory):
    runs = []
    for path in sorted(glob.glob(os.path.join(directory, "run-*.json"))):
        try:
            with open(path) as f:
                text = f.read().strip()
            if text:
                runs.append(json.loads(text))
        except (OSError, ValueError) as e:
            print(f"summarize: skipping {path}: {e}", file=sys.stderr)
    return runs


def stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def fmt(s, unit="", scale=1.0, digits=0):
    if s is None:
        return "-"
    f = lambda v: f"{v * scale:,.{digits}f}"
    if s["min"] == s["max"]:
        return f"{f(s['median'])}{unit}"
    return f"{f(s['median'])}{unit} ({f(s['min'])}–{f(s['max'])})"


def summarize_traffic(runs):
    fan = runs[0].get("deliveries_per_message", 0) > 0
    by_rate = {}
    for run in runs:
        for step in run.get("steps", []):
            by_rate.setdefault(step["offered_msgs_per_s"], []).append(step)
    out = {"scenario": runs[0]["scenario"], "shape": runs[0]["shape"], "runs": len(runs), "steps": []}
    best_key = "best_sustained_deliveries_per_s" if fan else "best_sustained_acked_per_s"
    out["best_sustained"] = stats([r.get(best_key) for r in runs])
    for rate in sorted(by_rate):
        steps = by_rate[rate]
        lat = "delivery_latency" if fan else "ack_latency"
        per = "server_us_per_delivery" if fan else "server_us_per_message"
        out["steps"].append({
            "offered_msgs_per_s": rate,
            "runs": len(steps),
            "sustained_runs": sum(1 for s in steps if s["sustained"]),
            "throughput": stats([s["deliveries_per_s" if fan else "acked_per_s"] for s in steps]),
            "acked_per_s": stats([s["acked_per_s"] for s in steps]),
            "p50_us": stats([s[lat]["p50_us"] for s in steps]),
            "p99_us": stats([s[lat]["p99_us"] for s in steps]),
            "p999_us": stats([s[lat]["p999_us"] for s in steps]),
            "ack_p99_us": stats([s["ack_latency"]["p99_us"] for s in steps]),
            "undelivered": stats([s.get("undelivered", s.get("lost")) for s in steps]),
            "drain_timeouts": sum(1 for s in steps if s.get("drain_timed_out")),
            "duplicates": stats([s["duplicates"] for s in steps]),
            "reordered": stats([s["reordered"] for s in steps]),
            "server_cpu_pct": stats([s["server_cpu_pct"] for s in steps]),
            "server_us_per": stats([s[per] for s in steps]),
            "generator_cpu_pct": stats([s["generator_cpu_pct"] for s in steps]),
            "other_cpu_pct": stats([s.get("other_processes_cpu_pct") for s in steps]),
            "server_threads": thread_stats(steps, "us_per_delivery" if fan else "us_per_message"),
        })
    return out, fan


def thread_stats(steps, key):
    """chatd's CPU per unit by thread name (runs of chatctl from session 7 on), busiest first."""
    names = {}
    for s in steps:
        for name, t in s.get("server_threads", {}).items():
            names.setdefault(name, []).append(t[key])
    by_name = {n: stats(v) for n, v in names.items()}
    return dict(sorted(by_name.items(), key=lambda kv: -kv[1]["median"]))


def print_traffic(out, fan):
    print(f"{out['scenario']}: {out['shape']} — {out['runs']} runs, median (min–max)")
    unit = "deliveries/s" if fan else "acked msgs/s"
    print(f"best sustained: {fmt(out['best_sustained'])} {unit}")
    for s in out["steps"]:
        print(f"\n  offered {s['offered_msgs_per_s']:,.0f} msgs/s" if s["offered_msgs_per_s"] else "\n  closed loop",
              f"(sustained in {s['sustained_runs']}/{s['runs']} runs)")
        print(f"    {unit:<14} {fmt(s['throughput'])}")
        print(f"    {'p50':<14} {fmt(s['p50_us'], ' ms', 1e-3, 2)}")
        print(f"    {'p99':<14} {fmt(s['p99_us'], ' ms', 1e-3, 2)}")
        print(f"    {'p99.9':<14} {fmt(s['p999_us'], ' ms', 1e-3, 2)}")
        if fan:
            print(f"    {'ack p99':<14} {fmt(s['ack_p99_us'], ' ms', 1e-3, 2)}")
        print(f"    {'undeliv/dup/ooo':<14} {fmt(s['undelivered'])} / {fmt(s['duplicates'])} / {fmt(s['reordered'])}"
              + (f"  (drain timed out in {s['drain_timeouts']} runs: still queued)" if s['drain_timeouts'] else ""))
        per = "us/delivery" if fan else "us/message"
        print(f"    {'server CPU':<14} {fmt(s['server_cpu_pct'], '%')}, {fmt(s['server_us_per'], ' ' + per, 1, 2)}")
        print(f"    {'generator CPU':<14} {fmt(s['generator_cpu_pct'], '%')}; other processes {fmt(s['other_cpu_pct'], '%')}")
        busy = [(n, t) for n, t in s["server_threads"].items() if t["median"] >= 0.01]
        if busy:
            print(f"    {'by thread':<14} " + ", ".join(f"{n} {fmt(t, '', 1, 2)}" for n, t in busy) + f" {per}")


def summarize_idle(runs):
    return {
        "scenario": "idle",
        "shape": runs[0]["shape"],
        "runs": len(runs),
        "bytes_per_connection": stats([r["server_bytes_per_connection"] for r in runs]),
        "rss_before_kb": stats([r["server_rss_before_kb"] for r in runs]),
        "rss_after_kb": stats([r["server_rss_after_kb"] for r in runs]),
        "server_cpu_pct": stats([r["server_cpu_pct"] for r in runs]),
        "generator_cpu_pct": stats([r["generator_cpu_pct"] for r in runs]),
        "other_cpu_pct": stats([r.get("other_processes_cpu_pct") for r in runs]),
        "connect_s": stats([r["connect_s"] for r in runs]),
        "kernel_slab_per_connection": stats([r.get("kernel", {}).get("slab_bytes_per_connection_both_ends")
                                             for r in runs]),
    }


def print_idle(out):
    print(f"idle: {out['shape']} — {out['runs']} runs, median (min–max)")
    print(f"  server RSS per connection  {fmt(out['bytes_per_connection'], ' bytes')}")
    print(f"  server RSS before / after  {fmt(out['rss_before_kb'], ' MB', 1 / 1024, 1)} / "
          f"{fmt(out['rss_after_kb'], ' MB', 1 / 1024, 1)}")
    print(f"  server CPU while idle      {fmt(out['server_cpu_pct'], '%', 1, 2)}")
    print(f"  connect + auth time        {fmt(out['connect_s'], ' s', 1, 1)}")
    print(f"  kernel slab per connection {fmt(out['kernel_slab_per_connection'], ' bytes')} (both ends on this machine)")
    print(f"  generator / other CPU      {fmt(out['generator_cpu_pct'], '%', 1, 2)} / {fmt(out['other_cpu_pct'], '%')}")


def main(argv):
    as_json = "--json" in argv
    args = [a for a in argv[1:] if a != "--json"]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    runs = load(args[0])
    if not runs:
        print(f"summarize: no runs in {args[0]}", file=sys.stderr)
        return 1
    if runs[0]["scenario"] == "idle":
        out = summarize_idle(runs)
        print(json.dumps(out)) if as_json else print_idle(out)
    else:
        out, fan = summarize_traffic(runs)
        print(json.dumps(out)) if as_json else print_traffic(out, fan)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
