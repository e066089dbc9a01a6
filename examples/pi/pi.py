#!/usr/bin/env python3
"""Estimate pi by sampling points in the unit square; print a JSON record for one seed."""
import argparse, json, random, time

p = argparse.ArgumentParser()
p.add_argument("--seed", type=int, required=True)
p.add_argument("--samples", type=int, default=1_000_000)
a = p.parse_args()

rng = random.Random(a.seed)
t0 = time.time()
inside = sum(1 for _ in range(a.samples) if rng.random() ** 2 + rng.random() ** 2 <= 1.0)
print(json.dumps({"seed": a.seed, "samples": a.samples, "inside": inside,
                  "pi": 4.0 * inside / a.samples, "seconds": round(time.time() - t0, 3)}))
