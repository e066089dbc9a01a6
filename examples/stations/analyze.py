#!/usr/bin/env python3
"""Yearly mean temperature and a least-squares warming trend (°C per decade) for one station's CSV."""
import csv, json, sys
from collections import defaultdict

path = sys.argv[1]
by_year = defaultdict(list)
with open(path) as f:
    for row in csv.DictReader(f):
        by_year[int(row["date"][:4])].append(float(row["tmean_c"]))
years = sorted(by_year)
means = [sum(by_year[y]) / len(by_year[y]) for y in years]
my, mm = sum(years) / len(years), sum(means) / len(means)
slope = sum((y - my) * (m - mm) for y, m in zip(years, means)) / sum((y - my) ** 2 for y in years)
print(json.dumps({"station": path.rsplit("/", 1)[-1][:-4], "years": len(years), "days": sum(map(len, by_year.values())),
                  "yearly_mean_c": {y: round(m, 3) for y, m in zip(years, means)},
                  "trend_c_per_decade": round(10 * slope, 4)}, indent=1))
