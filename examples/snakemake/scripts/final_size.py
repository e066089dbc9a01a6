#!/usr/bin/env python3
"""Final epidemic size and peak of one simulated run, next to the analytic final size z = 1 - exp(-R0 z)."""
import argparse, csv, json, math

p = argparse.ArgumentParser()
p.add_argument("--r0", type=float, required=True)
p.add_argument("run")
a = p.parse_args()
with open(a.run) as f:
    rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
peak = max(rows, key=lambda r: r["i"])
z = 0.5 if a.r0 > 1 else 0.0  # fixed-point iteration for the analytic final size
for _ in range(200):
    z = 1 - math.exp(-a.r0 * z)
print(json.dumps({"r0": a.r0, "final_size": round(rows[-1]["r"], 6), "analytic_final_size": round(z, 6),
                  "peak_infected": round(peak["i"], 6), "peak_day": int(peak["day"])}))
