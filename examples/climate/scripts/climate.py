#!/usr/bin/env python3
"""Toy station-climate pipeline steps (standard library only).

  generate STATION YEARS   daily temperatures as CSV (day,temp_c); some days missing, some glitches (-999)
  clean FILE               drop missing and glitched rows
  trend FILE               least-squares warming trend in °C per decade, as JSON
  extremes DIR             hottest and coldest day over every cleaned file in DIR, as JSON
  summary DIR EXTREMES     a table comparing fitted and true trends
"""
import csv, glob, hashlib, json, math, os, random, sys

STATIONS = {  # mean °C, seasonal amplitude, true trend °C per decade
    "oslo": (6.0, 9.0, 0.45), "lima": (19.0, 3.0, 0.15), "cairo": (22.0, 7.0, 0.35), "perth": (18.5, 5.5, 0.20),
    "quito": (14.0, 0.8, 0.10), "tromso": (3.0, 8.0, 0.60), "dakar": (24.5, 3.0, 0.25), "lhasa": (8.0, 8.5, 0.50),
}


def generate(station, years):
    mean, amp, per_decade = STATIONS[station]
    rng = random.Random(int(hashlib.sha256(station.encode()).hexdigest()[:8], 16))
    w = csv.writer(sys.stdout)
    w.writerow(["day", "temp_c"])
    for day in range(int(years) * 365):
        if rng.random() < 0.02:
            continue  # a missing day
        t = mean + amp * math.sin(2 * math.pi * day / 365) + per_decade * day / 3652.5 + rng.gauss(0, 2.0)
        w.writerow([day, -999 if rng.random() < 0.005 else round(t, 2)])


def rows(path):
    with open(path) as f:
        for r in csv.DictReader(f):
            yield int(r["day"]), float(r["temp_c"])


def clean(path):
    w = csv.writer(sys.stdout)
    w.writerow(["day", "temp_c"])
    for day, t in rows(path):
        if -90 < t < 60:
            w.writerow([day, t])


def trend(path):
    station = os.path.splitext(os.path.basename(path))[0]
    raw = list(rows(path))
    # Remove the seasons first (each day's anomaly from the mean of its day of the year): a straight line fitted
    # through a seasonal cycle is biased by where the record starts and ends in the cycle.
    by_doy = {}
    for d, t in raw:
        by_doy.setdefault(d % 365, []).append(t)
    clim = {k: sum(v) / len(v) for k, v in by_doy.items()}
    pts = [(d, t - clim[d % 365]) for d, t in raw]
    n = len(pts)
    mx = sum(d for d, _ in pts) / n
    my = sum(t for _, t in pts) / n
    slope = sum((d - mx) * (t - my) for d, t in pts) / sum((d - mx) ** 2 for d, _ in pts)
    print(json.dumps({"station": station, "days": n, "per_decade": round(slope * 3652.5, 3), "true_per_decade": STATIONS[station][2]}))


def extremes(d):
    hot, cold = (None, -1e9, None), (None, 1e9, None)
    for path in sorted(glob.glob(f"{d}/*.csv")):
        station = os.path.splitext(os.path.basename(path))[0]
        for day, t in rows(path):
            if t > hot[1]:
                hot = (station, t, day)
            if t < cold[1]:
                cold = (station, t, day)
    print(json.dumps({"hottest": {"station": hot[0], "temp_c": hot[1], "day": hot[2]},
                      "coldest": {"station": cold[0], "temp_c": cold[1], "day": cold[2]}}))


def summary(d, extremes_file):
    recs = [json.load(open(p)) for p in sorted(glob.glob(f"{d}/*.json"))]
    print(f"{'station':8} {'days':>6} {'fitted °C/decade':>17} {'true':>6}")
    for r in recs:
        print(f"{r['station']:8} {r['days']:>6} {r['per_decade']:>17.3f} {r['true_per_decade']:>6.2f}")
    worst = max(abs(r["per_decade"] - r["true_per_decade"]) for r in recs)
    e = json.load(open(extremes_file))
    print(f"{len(recs)} stations; largest error {worst:.3f} °C/decade")
    print(f"hottest day: {e['hottest']['temp_c']} °C at {e['hottest']['station']}; coldest: {e['coldest']['temp_c']} °C at {e['coldest']['station']}")


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    {"generate": generate, "clean": clean, "trend": trend, "extremes": extremes, "summary": summary}[cmd](*args)
