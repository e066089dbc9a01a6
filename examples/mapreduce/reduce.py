#!/usr/bin/env python3
"""Reduce: combine the per-seed estimates in DIR/pi-*.json into one estimate of pi with its standard error."""
import glob, json, math, sys

recs = [json.load(open(f)) for f in sorted(glob.glob(f"{sys.argv[1]}/pi-*.json"))]
if not recs:
    sys.exit(f"no pi-*.json files in {sys.argv[1]}")
inside = sum(r["inside"] for r in recs)
n = sum(r["samples"] for r in recs)
p = inside / n
err = 4 * math.sqrt(p * (1 - p) / n)
print(f"pi ≈ {4 * p:.6f} ± {err:.6f} from {len(recs)} simulations, {n:,} samples (true value 3.141593, off by {abs(4 * p - math.pi) / err:.1f} standard errors)")
