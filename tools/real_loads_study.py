#!/usr/bin/python3
"""The deepseek-v3-real-loads study: how evenly DeepSeek-V3's real per-layer expert loads land on the
GPUs of DeepSeek's two deployments (MODEL.md §8: prefill on EP32 — 4 nodes, 32 redundant experts, 9
routed experts per GPU; decode on EP144 — 18 nodes, 32 redundant, 2 per GPU), with the same slots
filled without load knowledge ("static") and by EPLB from each layer's own loads.

  tools/real_loads_study.py [--prefill LOADS.json] [--decode LOADS.json] [-o DIR]

Runs `moesim place --report --json` for each deployment, prints a summary line per deployment and
writes DIR/real_loads.png (default DIR: results/real-loads)."""
import argparse
import json
import os
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPLOYMENTS = [  # name, default loads file, replicas, groups, nodes, devices
    ("prefill EP32", "scenarios/data/deepseek-v3-prefill_in4096.json", 288, 8, 4, 32),
    ("decode EP144", "scenarios/data/deepseek-v3-decode_in1000out1000.json", 288, 8, 18, 144),
]


def report(moesim, loads, replicas, groups, nodes, devices):
    cmd = [moesim, "place", "--loads", loads, "--replicas", str(replicas), "--groups", str(groups),
           "--nodes", str(nodes), "--devices", str(devices), "--report", "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"real_loads_study: {' '.join(cmd)} failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prefill", default=DEPLOYMENTS[0][1], help="SGLang loads file of a prefill benchmark")
    p.add_argument("--decode", default=DEPLOYMENTS[1][1], help="SGLang loads file of a decode benchmark")
    p.add_argument("-o", "--outdir", default=os.path.join(ROOT, "results", "real-loads"))
    p.add_argument("--moesim", default=os.path.join(ROOT, "build", "moesim"))
    a = p.parse_args()
    files = [a.prefill, a.decode]
    fig, axes = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    for ax, (name, _, replicas, groups, nodes, devices), loads in zip(axes, DEPLOYMENTS, files):
        path = loads if os.path.isabs(loads) else os.path.join(ROOT, loads)
        r = report(a.moesim, path, replicas, groups, nodes, devices)
        ids, static, eplb = r["layer_ids"], r["device_max_over_mean_static"], r["device_max_over_mean_eplb"]
        expert = r["expert_max_over_mean"]
        mean = lambda v: sum(v) / len(v)
        print(f"{name}: {len(ids)} layers of {os.path.basename(loads)}; expert max/mean {mean(expert):.2f} "
              f"({min(expert):.2f}-{max(expert):.2f}); GPU max/mean static {mean(static):.3f} "
              f"({min(static):.3f}-{max(static):.3f}), EPLB {mean(eplb):.3f} ({min(eplb):.3f}-{max(eplb):.3f})")
        ax.plot(ids, static, "o-", ms=3, color="tab:purple", label="same slots, load-unaware")
        ax.plot(ids, eplb, "o-", ms=3, color="tab:blue", label="EPLB from the layer's loads")
        ax.axhline(1.0, color="0.5", lw=0.8, ls=":")
        ax.set_ylabel("GPU max/mean")
        ax.set_title(f"{name}: {devices} GPUs, {replicas} slots; {os.path.basename(loads)}", fontsize=10)
        ax.set_ylim(bottom=0.9)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=9)
    axes[1].set_xlabel("MoE layer (DeepSeek-V3; layers 0-2 are dense)")
    fig.suptitle("DeepSeek-V3 real per-layer loads (SGLang) placed on DeepSeek's deployments")
    fig.tight_layout()
    os.makedirs(a.outdir, exist_ok=True)
    out = os.path.join(a.outdir, "real_loads.png")
    tmp = out + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, out)
    print(out)


if __name__ == "__main__":
    main()
