#!/usr/bin/env python3
"""Combine the per-seed estimates from `dsg outputs` into one estimate with a standard error."""
import glob, json, math, sys

recs = [json.load(open(f)) for f in sorted(glob.glob(f"{sys.argv[1] if len(sys.argv) > 1 else 'out'}/pi-*.json"))]
if not recs:
    sys.exit("no pi-*.json files found")
inside = sum(r["inside"] for r in recs)
n = sum(r["samples"] for r in recs)
p = inside / n
print(f"pi ≈ {4 * p:.6f} ± {4 * math.sqrt(p * (1 - p) / n):.6f} from {len(recs)} tasks, {n:,} samples")
