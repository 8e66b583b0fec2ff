#!/usr/bin/python3
"""The numpy reference of moesim's inference route step (bench-v3 shape):
gating product, sigmoid scores, top-k of s + b, per-expert counts, sign bias
update and MaxVio. Prints tokens per second as `numpy_route_step <tokens/s>`."""
import sys
import time

import numpy as np

E, K, D, T = 256, 8, 64, 16 * 1024
rng = np.random.default_rng(1)
x = rng.standard_normal((T, D), dtype=np.float32) * 0.5
w = rng.standard_normal((D, E), dtype=np.float32) * 0.02
bias = np.zeros(E, dtype=np.float32)


def step():
    global bias
    z = x @ w
    s = 1.0 / (1.0 + np.exp(-z))
    sel = np.argpartition(-(s + bias), K, axis=1)[:, :K]
    gate = np.take_along_axis(s, sel, axis=1)
    gate /= gate.sum(axis=1, keepdims=True)
    counts = np.bincount(sel.ravel(), minlength=E).astype(np.float64)
    mean = counts.mean()
    bias += np.float32(1e-3) * np.sign(mean - counts).astype(np.float32)
    return (counts.max() - mean) / mean


step()  # warm-up
runs, start = 0, time.perf_counter()
while time.perf_counter() - start < float(sys.argv[1]) if len(sys.argv) > 1 else 2.0:
    step()
    runs += 1
print(f"numpy_route_step {runs * T / (time.perf_counter() - start):.0f}")
