#!/usr/bin/env python3
"""Fan-in: one TSV row per R0 from every run's final_size JSON."""
import json, sys

runs = sorted((json.load(open(p)) for p in sys.argv[1:]), key=lambda r: r["r0"])
print("r0\tfinal_size\tanalytic_final_size\tpeak_infected\tpeak_day")
for r in runs:
    print(f'{r["r0"]}\t{r["final_size"]}\t{r["analytic_final_size"]}\t{r["peak_infected"]}\t{r["peak_day"]}')
