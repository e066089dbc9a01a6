#!/usr/bin/env python3
"""Deterministic SIR model (fractions of a population), integrated with 4th-order Runge-Kutta; prints a CSV.

dS/dt = -beta S I, dI/dt = beta S I - gamma I, dR/dt = gamma I, with beta = R0 * gamma.
"""
import argparse

p = argparse.ArgumentParser()
p.add_argument("--r0", type=float, required=True)
p.add_argument("--gamma", type=float, default=0.1, help="recovery rate per day (1/infectious period)")
p.add_argument("--days", type=int, default=1000)
p.add_argument("--i0", type=float, default=1e-6, help="initially infected fraction")
a = p.parse_args()
beta, gamma = a.r0 * a.gamma, a.gamma


def f(s, i):
    return -beta * s * i, beta * s * i - gamma * i


s, i, dt = 1.0 - a.i0, a.i0, 0.1
print("day,s,i,r")
for step in range(int(a.days / dt) + 1):
    if step % 10 == 0:
        print(f"{step * dt:.0f},{s:.8f},{i:.8f},{1 - s - i:.8f}")
    k1 = f(s, i)
    k2 = f(s + dt / 2 * k1[0], i + dt / 2 * k1[1])
    k3 = f(s + dt / 2 * k2[0], i + dt / 2 * k2[1])
    k4 = f(s + dt * k3[0], i + dt * k3[1])
    s += dt / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
    i += dt / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
