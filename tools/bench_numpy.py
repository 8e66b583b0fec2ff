#!/usr/bin/python3
"""numpy references of the work moesim's performance targets time (issue #18),
written the way a numpy user would write them: whole-array operations, one
thread of Python driving numpy. Each prints `<name> <rate>`:

  inference  tokens/s  the whole bench-v3 inference step: token generation
                        (domain draws, Gaussian hidden states), gating product,
                        sigmoid scores, top-k of s + b, gate weights, per-expert
                        and per-device counts, sign bias update, MaxVio
  train      tokens/s  the same plus the task loss's gradient at the selected
                        experts, the weight gradient, SGD and the competence update
  layers58   token-layers/s  deepseek-v3.json's 58-layer step: per layer the
                        hidden state's update, gating, sigmoid, group-limited
                        routing (4 of 8 groups), top-8, counts
  timing58   steps/s   the analytic (bulk-synchronous) timing of one 58-layer
                        step on 144 devices, 128 tokens each: per layer, the
                        device-to-device copy matrix, each device's bytes per link
                        class and its expert compute, the slowest device per phase
  sweep64    tokens/s  the training step of the sweep benchmark's shape
                        (64 experts, top-8, hidden 64, 4 096 tokens)

  route      tokens/s  the inference step without token generation (tokens given):
                        round 1's reference

Usage: bench_numpy.py SECONDS [NAME ...] (default: all)."""
import sys
import time

import numpy as np

rng = np.random.default_rng(1)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


class Stream:
    """bench-v3's synthetic stream: sequences draw a Zipf domain, tokens
    redraw it with probability `mix`, x = centre + noise·N(0, I)."""

    def __init__(self, sequences, seq_len, d, domains=32, zipf=1.0, noise=0.5, mix=0.1, spread=1.0):
        self.B, self.L, self.d, self.C = sequences, seq_len, d, domains
        p = np.arange(1, domains + 1, dtype=np.float64) ** -zipf
        self.p = p / p.sum()
        self.noise, self.mix = noise, mix
        self.centres = (rng.standard_normal((domains, d)) * spread / np.sqrt(d)).astype(np.float32)

    def domains(self):
        dom = np.repeat(rng.choice(self.C, self.B, p=self.p), self.L)
        redraw = rng.random(dom.size) < self.mix
        dom[redraw] = rng.choice(self.C, int(redraw.sum()), p=self.p)
        return dom

    def hidden(self, dom, centres=None):
        c = self.centres if centres is None else centres
        return c[dom] + np.float32(self.noise) * rng.standard_normal((dom.size, self.d), dtype=np.float32)


def topk(v, k):
    """Top-k indices per row in rank order (descending)."""
    sel = np.argpartition(-v, k, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(v, sel, axis=1), axis=1, kind="stable")
    return np.take_along_axis(sel, order, axis=1)


class Step:
    """One layer's router, bias and competence (bench-v3 unless told)."""

    def __init__(self, E=256, k=8, d=64, sequences=16, seq_len=1024, devices=32, init_std=0.02):
        self.E, self.k, self.d, self.devices = E, k, d, devices
        self.stream = Stream(sequences, seq_len, d)
        self.T = sequences * seq_len
        self.w = (rng.standard_normal((d, E)) * init_std).astype(np.float32)
        self.bias = np.zeros(E, dtype=np.float32)
        self.kappa = np.full((E, self.stream.C), 0.5, dtype=np.float32)

    def route(self, train, fresh_tokens=True):
        if fresh_tokens or not hasattr(self, "x"):
            self.dom = self.stream.domains()
            self.x = self.stream.hidden(self.dom)
        dom, x = self.dom, self.x
        s = sigmoid(x @ self.w)
        sel = topk(s + self.bias, self.k)
        aff = np.take_along_axis(s, sel, axis=1)
        gate = aff / aff.sum(axis=1, keepdims=True)
        counts = np.bincount(sel.ravel(), minlength=self.E).astype(np.float64)
        device_load = np.bincount(sel.ravel() * self.devices // self.E, minlength=self.devices)
        mean = counts.mean()
        self.bias += np.float32(1e-3) * np.sign(mean - counts).astype(np.float32)
        if train:
            self.learn(x, dom, s, sel, aff)
        return gate, device_load, (counts.max() - mean) / mean

    def learn(self, x, dom, s, sel, aff, lr=0.1):
        # Task loss ℓ = 1 − Σ s_i κ_i / Σ s_i over the selected experts (MODEL.md §3).
        kap = self.kappa[sel, dom[:, None]]
        total = aff.sum(axis=1, keepdims=True)
        q = (aff * kap).sum(axis=1, keepdims=True) / total
        g_sel = -(kap - q) / total / self.T
        g = np.zeros_like(s)
        np.put_along_axis(g, sel, g_sel * aff * (1 - aff), axis=1)  # sigmoid backward
        self.w -= np.float32(lr) * (x.T @ g)
        n = np.bincount((sel * self.stream.C + dom[:, None]).ravel(),
                        minlength=self.E * self.stream.C).reshape(self.E, -1)
        cbar = self.T * self.k / self.E
        p = n.sum(axis=1, keepdims=True)
        self.kappa = np.clip(self.kappa + 0.1 * (n / cbar) * (1 - self.kappa) - 0.001 * self.kappa
                             - 0.01 * ((p - n) / cbar) * self.kappa, 0, 1).astype(np.float32)


def group_limited(v, groups, m, k):
    """DeepSeek-V3: keep the m groups with the highest sum of their top-2, then top-k."""
    T, E = v.shape
    g = v.reshape(T, groups, E // groups)
    score = np.sort(g, axis=2)[:, :, -2:].sum(axis=2)
    keep = np.argpartition(-score, m, axis=1)[:, :m]
    mask = np.full((T, groups), -np.inf, dtype=v.dtype)
    np.put_along_axis(mask, keep, 0, axis=1)
    return topk((g + mask[:, :, None]).reshape(T, E), k)


class Layers58:
    """deepseek-v3.json: 58 layers, ρ = 0.5, node-limited 4 of 8 groups."""

    def __init__(self, layers=58, E=256, k=8, d=64):
        self.layers, self.E, self.k = layers, E, k
        self.stream = Stream(16, 1024, d, spread=2.15, noise=0.25, mix=0.2)
        self.centres = [(rng.standard_normal((32, d)) * 2.15 / np.sqrt(d)).astype(np.float32) for _ in range(layers)]
        self.w = [(rng.standard_normal((d, E)) * 0.3).astype(np.float32) for _ in range(layers)]
        self.T = self.stream.B * self.stream.L

    def step(self):
        dom = self.stream.domains()
        x = self.stream.hidden(dom, self.centres[0])
        rho, fresh = np.float32(0.5), np.float32(np.sqrt(0.75))
        for layer in range(self.layers):
            if layer:
                x = rho * x + fresh * self.stream.hidden(dom, self.centres[layer])
            sel = group_limited(sigmoid(x @ self.w[layer]), 8, 4, self.k)
            np.bincount(sel.ravel(), minlength=self.E)


class Timing58:
    """The bulk-synchronous bound of timing_bench.cpp's step: 144 devices × 128
    tokens, top-8 of 256 experts spread over the devices, 58 layers."""

    def __init__(self, layers=58, devices=144, per_device=128, E=256, k=8, per_node=8):
        self.layers, self.D, self.k, self.G = layers, devices, k, per_node
        T = devices * per_device
        self.home = np.arange(T) // per_device
        first = rng.integers(0, E, (4, T, 1))
        stride = 1 + 2 * rng.integers(0, 16, (4, T, 1))
        self.device = ((first + np.arange(k) * stride) % E) * devices // E  # four routings, cycled

    def step(self):
        D, G = self.D, self.G
        same_node = (np.arange(D)[:, None] // G) == (np.arange(D)[None, :] // G)
        total = 0.0
        for layer in range(self.layers):
            dev = np.sort(self.device[layer % 4], axis=1)
            first = np.ones_like(dev, dtype=bool)
            first[:, 1:] = dev[:, 1:] != dev[:, :-1]  # one copy per destination device
            src = np.broadcast_to(self.home[:, None], dev.shape)[first]
            copies = np.bincount(src * D + dev[first], minlength=D * D).reshape(D, D).astype(np.float64)
            np.fill_diagonal(copies, 0)
            intra, inter = np.where(same_node, copies, 0), np.where(same_node, 0, copies)
            link = np.maximum(np.maximum(intra.sum(1), intra.sum(0)) * 7168 / 160e9,
                              np.maximum(inter.sum(1), inter.sum(0)) * 7168 / 50e9)
            load = np.bincount(self.device[layer % 4].ravel(), minlength=D)
            compute = np.maximum(load * 88080384 / (989.5e12 * 0.6), 2 * 44040192 / 3.35e12)
            total += link.max() * 3 + compute.max()  # dispatch FP8, combine BF16 (2×)
        return total


def rate(name, seconds):
    if name in ("inference", "route", "train", "sweep64"):
        step = Step() if name != "sweep64" else Step(E=64, sequences=32, seq_len=128, devices=8)
        train, fresh = name in ("train", "sweep64"), name != "route"
        run, items = (lambda: step.route(train, fresh)), step.T
    elif name == "layers58":
        model = Layers58()
        run, items = model.step, model.T * model.layers
    elif name == "timing58":
        model = Timing58()
        run, items = model.step, 1
    else:
        raise SystemExit(f"bench_numpy.py: unknown reference '{name}'")
    run()  # warm-up
    runs, start = 0, time.perf_counter()
    while runs == 0 or time.perf_counter() - start < seconds:
        run()
        runs += 1
    return runs * items / (time.perf_counter() - start)


if __name__ == "__main__":
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    for name in sys.argv[2:] or ["route", "inference", "train", "layers58", "timing58", "sweep64"]:
        print(f"{name} {rate(name, seconds):.6g}", flush=True)
