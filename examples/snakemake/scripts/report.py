#!/usr/bin/env python3
"""A short report: how far each simulated final size is from theory, and the herd-immunity threshold 1 - 1/R0."""
import csv, sys

with open(sys.argv[1]) as f:
    rows = list(csv.DictReader(f, delimiter="\t"))
worst = 0.0
print("SIR final epidemic size by R0 (simulated vs analytic z = 1 - exp(-R0 z))")
for r in rows:
    r0, sim, theory = float(r["r0"]), float(r["final_size"]), float(r["analytic_final_size"])
    worst = max(worst, abs(sim - theory))
    print(f"R0 {r0:.1f}: {100 * sim:5.1f}% infected (theory {100 * theory:5.1f}%), "
          f"peak {100 * float(r['peak_infected']):4.1f}% on day {r['peak_day']}, herd immunity at {100 * (1 - 1 / r0):4.1f}%")
print(f"largest difference from theory: {worst:.2e}")
print("OK" if worst < 1e-3 else "MISMATCH")
