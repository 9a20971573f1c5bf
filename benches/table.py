#!/usr/bin/env python3
"""Turns the benchmark results into a Markdown table (stdout) and a merged JSON summary.

    cargo bench --bench engine -- --quick   # Criterion: target/criterion/<group>/<pod>/new/estimates.json
    cargo bench --bench alloc               # target/bench-results/engine.json
    python3 benches/table.py [--target DIR] [--json OUT]

Times are Criterion's median per call (the alloc bench's plain mean is used for a group
Criterion did not run). `validate / baseline` is the native analogue of issue 5's wasm
budget (full validate vs. a module that only parses and returns the Pod).
"""
import argparse
import json
import os
import sys

GROUPS = ["evaluate", "decide_only", "reinject", "validate", "baseline"]


def fmt_time(ns):
    if ns is None:
        return "-"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    return f"{ns / 1e3:.0f} µs"


def fmt_bytes(b):
    if b is None:
        return "-"
    if b >= 1 << 20:
        return f"{b / (1 << 20):.2f} MiB"
    return f"{b / 1024:.0f} KiB"


def criterion_ns(target, group, pod):
    path = os.path.join(target, "criterion", group, pod, "new", "estimates.json")
    try:
        with open(path) as f:
            return json.load(f)["median"]["point_estimate"]
    except (OSError, KeyError, ValueError):
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default=os.environ.get("CARGO_TARGET_DIR", "target"))
    ap.add_argument("--json", help="also write the merged numbers here")
    args = ap.parse_args()

    alloc_path = os.path.join(args.target, "bench-results", "engine.json")
    try:
        with open(alloc_path) as f:
            alloc = json.load(f)
    except OSError:
        alloc = {"pods": []}
    by_pod = {p["pod"]: p for p in alloc.get("pods", [])}
    pods = list(by_pod) or ["1-container", "3-containers", "20-containers"]

    rows = []
    for pod in pods:
        a = by_pod.get(pod, {})
        row = {"pod": pod, "payload_bytes": a.get("payload_bytes")}
        for g in GROUPS:
            ns = criterion_ns(args.target, g, pod)
            if ns is None:
                ns = (a.get(g) or {}).get("mean_ns")
            row[f"{g}_ns"] = ns
        for g in ("evaluate", "validate"):
            row[f"{g}_allocations"] = (a.get(g) or {}).get("allocations")
            row[f"{g}_bytes"] = (a.get(g) or {}).get("bytes")
            row[f"{g}_peak_bytes"] = (a.get(g) or {}).get("peak_bytes")
        if row["validate_ns"] and row["baseline_ns"]:
            row["validate_over_baseline"] = round(row["validate_ns"] / row["baseline_ns"], 2)
        rows.append(row)

    print("| Pod | payload | decide only | decide + render | re-inject | validate (`engine::validate`, system allocator) | baseline (parse + echo) | validate / baseline | allocations / evaluate | bytes / evaluate | allocations / validate | bytes / validate |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ratio = r.get("validate_over_baseline")
        print(
            f"| {r['pod']} | {fmt_bytes(r['payload_bytes'])} | {fmt_time(r['decide_only_ns'])} | "
            f"{fmt_time(r['evaluate_ns'])} | {fmt_time(r['reinject_ns'])} | {fmt_time(r['validate_ns'])} | "
            f"{fmt_time(r['baseline_ns'])} | {f'{ratio:.2f}x' if ratio else '-'} | "
            f"{r['evaluate_allocations'] if r['evaluate_allocations'] is not None else '-'} | "
            f"{fmt_bytes(r['evaluate_bytes'])} | "
            f"{r['validate_allocations'] if r['validate_allocations'] is not None else '-'} | "
            f"{fmt_bytes(r['validate_bytes'])} |"
        )
    m = alloc.get("machine") or {}
    if m:
        print(f"\nNative ({alloc.get('profile', '?')} build), {m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('os', '?')}/{m.get('arch', '?')}.")
    arts = {k: v for k, v in (alloc.get("artifacts") or {}).items() if v is not None}
    if arts:
        print("Artifacts: " + ", ".join(f"{k} {v} bytes ({fmt_bytes(v)})" for k, v in arts.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": m, "rows": rows, "artifacts": arts}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
