#!/usr/bin/env python3
"""Tests of tools/plot.py on synthetic moesim result files (stdlib unittest + matplotlib/numpy).

    /usr/bin/python3 tools/plot_test.py            run the tests
    /usr/bin/python3 tools/plot_test.py --demo DIR write the synthetic results and their figures to DIR
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
PLOT = os.path.join(HERE, "plot.py")


def scenario(name="collapse", experts=32, top_k=4, steps=100, nodes=1, devices_per_node=4):
    return {"name": name, "seed": 1, "steps": steps, "mode": "train",
            "model": {"experts": experts, "top_k": top_k, "hidden": 64, "score": "sigmoid"},
            "batch": {"sequences": 16, "seq_len": 128},
            "cluster": {"nodes": nodes, "devices_per_node": devices_per_node, "placement": "contiguous"},
            "record": {"every": 1, "per_step_loads": True, "window": 20}}


def make_result(strategy, kind, sc=None, rng_seed=0, cf=None, per_step=True, timing=True):
    """A plausible result: kind 'collapse' concentrates on few experts, 'aux' stays mildly
    imbalanced, 'bias' starts imbalanced and balances; cf sets a capacity dropper."""
    sc = sc or scenario()
    rng = np.random.default_rng(rng_seed)
    E, k, S = sc["model"]["experts"], sc["model"]["top_k"], sc["steps"]
    D = sc["cluster"]["nodes"] * sc["cluster"]["devices_per_node"]
    T = sc["batch"]["sequences"] * sc["batch"]["seq_len"]
    skew = rng.normal(size=E)
    routed, processed, bias_rows, quality = [], [], [], []
    bias = np.zeros(E)
    for t in range(S):
        strength = {"collapse": 0.4 + 3.5 * t / S, "aux": 0.45, "bias": 0.8}[kind]
        logits = strength * skew - (bias if kind == "bias" else 0)
        p = np.exp(logits - logits.max())
        load = rng.multinomial(T * k, p / p.sum()).astype(float)
        if kind == "bias":
            bias += 0.08 * (load - load.mean()) / load.mean()
        kept = np.minimum(load, np.ceil(cf * T * k / E)) if cf else load
        routed.append(load)
        processed.append(kept)
        bias_rows.append(bias.copy() if kind == "bias" else np.zeros(E))
        quality.append({"collapse": 0.34 + 0.05 * t / S, "aux": 0.36, "bias": 0.35}[kind]
                       + 0.01 * rng.normal() + (0.2 * (1 - kept.sum() / load.sum())))
    routed, processed, bias_rows = np.array(routed), np.array(processed), np.array(bias_rows)
    device = processed.reshape(S, D, E // D).sum(axis=2)
    mean = routed.mean(axis=1)
    cum = routed.cumsum(axis=0)
    p = routed / routed.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.nansum(np.where(p > 0, p * np.log(p), 0), axis=1) / np.log(E)
    drop = 1 - processed.sum(axis=1) / routed.sum(axis=1)
    series = {
        "step": list(range(S)),
        "maxvio_batch": list((routed.max(axis=1) - mean) / mean),
        "maxvio_global": list((cum.max(axis=1) - cum.mean(axis=1)) / cum.mean(axis=1)),
        "entropy_norm": list(entropy),
        "drop_rate": list(drop),
        "token_drop_rate": list(drop ** 3),
        "quality_loss": quality,
    }
    if timing:
        series["step_time"] = list(2e-4 + 1.5e-7 * device.max(axis=1))
        series["idle_fraction"] = list(1 - device.mean(axis=1) / device.max(axis=1))
        series["compute_time"] = list(1.2e-7 * device.max(axis=1))
    series["bias_min"] = list(bias_rows.min(axis=1))
    series["bias_max"] = list(bias_rows.max(axis=1))
    series["bias_mean"] = list(bias_rows.mean(axis=1))
    if kind == "aux":
        series["aux_loss"] = list(1 + 0.01 * rng.normal(size=S))
    doc = {
        "schema": "moesim.result/1", "moesim_version": "0.1.0", "scenario": sc,
        "strategy": {"name": strategy, "balancers": [], "routing": {"type": "none"},
                     "dropper": {"type": "capacity", "cf": cf} if cf else {"type": "none"}},
        "seed": 1,
        "summary": {"tokens": S * T, "maxvio_batch": float(np.mean(series["maxvio_batch"])),
                    "maxvio_global": series["maxvio_global"][-1], "entropy_norm": float(entropy[-20:].mean()),
                    "drop_rate": float(drop.mean()), "quality_loss": float(np.mean(quality[-20:])),
                    "step_time_mean": float(np.mean(series.get("step_time", [0])))},
        "series": {k: [float(x) for x in v] for k, v in series.items()},
        "final": {"bias": list(bias_rows[-1]), "expert_load_total": list(routed.sum(axis=0)),
                  "expert_processed_total": list(processed.sum(axis=0)),
                  "device_load_total": list(device.sum(axis=0))},
    }
    if timing and kind != "collapse":  # the Gantt chart's input for two strategies, none for the third
        # Two layers × two micro-batches: layer, micro-batch, dense start/end, expert ready/start/end, layer end.
        rows = [[0, 0, 0, 1e-5, 3e-5, 3e-5, 8e-5, 1e-4], [0, 1, 1e-5, 2e-5, 5e-5, 8e-5, 1.2e-4, 1.5e-4],
                [1, 0, 1.2e-4, 1.3e-4, 1.6e-4, 1.6e-4, 2e-4, 2.3e-4], [1, 1, 2e-4, 2.1e-4, 2.4e-4, 2.4e-4, 2.8e-4, 3e-4]]
        doc["final"]["critical_timeline"] = [float(x) for row in rows for x in row]
        doc["final"]["critical_device"] = [3.0]
    if per_step:
        doc["per_step"] = {"expert_load": routed.tolist(), "expert_processed": processed.tolist(),
                           "device_load": device.tolist()}
    return doc


def write_json(path, doc):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def write_demo_results(folder, steps=100):
    sc = scenario(steps=steps, nodes=2, devices_per_node=4)
    return [write_json(os.path.join(folder, "collapse", f"{name}.json"), make_result(name, kind, sc, i, cf))
            for i, (name, kind, cf) in enumerate([("none", "collapse", None), ("aux-0.01-cap1.25", "aux", 1.25),
                                                   ("bias", "bias", None)])]


def write_demo_sweep(folder, two_params=True):
    """A sweep over cf (and alpha if two_params) with two strategies per configuration."""
    sc = scenario(name="capsweep", steps=40)
    vary = [{"path": "/strategies/0/dropper/cf", "values": [0.75, 1.0, 1.25, 1.5]}]
    if two_params:
        vary.append({"path": "/strategies/0/balancers/0/alpha", "values": [0.001, 0.01]})
    runs = []
    combos = [(cf, a) for cf in vary[0]["values"] for a in (vary[1]["values"] if two_params else [None])]
    for i, (cf, alpha) in enumerate(combos):
        values = {vary[0]["path"]: cf}
        if two_params:
            values[vary[1]["path"]] = alpha
        results = {}
        for j, (name, kind) in enumerate([("aux", "aux"), ("bias", "bias")]):
            rel = f"runs/{i:03d}/{name}.json"
            doc = make_result(name, kind, sc, 10 * i + j, cf, per_step=False)
            doc["summary"]["quality_loss"] += (alpha or 0) * 3 * (j == 0)
            write_json(os.path.join(folder, rel), doc)
            results[name] = rel
        runs.append({"index": i, "values": values, "results": results})
    return write_json(os.path.join(folder, "sweep.json"),
                      {"schema": "moesim.sweep/1", "scenario": "capsweep", "vary": vary, "runs": runs})


def run_plot(*args):
    return subprocess.run([sys.executable, PLOT, *args], capture_output=True, text=True, timeout=300)


class PlotTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.out = os.path.join(self.dir, "out")

    def tearDown(self):
        self.tmp.cleanup()

    def assert_png(self, path):
        import matplotlib.image as mpimg
        self.assertTrue(os.path.isfile(path), path)
        with open(path, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", path)
        self.assertGreater(os.path.getsize(path), 10_000, path)
        img = mpimg.imread(path)
        self.assertGreater(min(img.shape[:2]), 300, path)
        self.assertGreater(len(np.unique(img[..., :3].reshape(-1, 3), axis=0)), 50, f"{path} looks blank")

    def written(self, proc):
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertNotIn("Traceback", proc.stderr)
        files = proc.stdout.split()
        for f in files:
            self.assert_png(f)
        self.assertEqual([n for n in os.listdir(self.out) if not n.endswith(".png")], [], "temp files left")
        return sorted(os.path.basename(f) for f in files)

    def test_full_results(self):
        paths = write_demo_results(self.dir)
        names = self.written(run_plot(*paths, "-o", self.out))
        self.assertEqual(names, sorted(["maxvio.png", "entropy.png", "heatmap_none.png",
                                        "heatmap_aux-0.01-cap1.25.png", "heatmap_bias.png", "final_loads.png",
                                        "drops.png", "quality.png", "timing.png", "bias.png"]))

    def test_missing_series_are_skipped_with_a_note(self):
        doc = make_result("plain", "aux", per_step=False, timing=False)
        for key in ("entropy_norm", "bias_min", "bias_max", "bias_mean", "drop_rate", "token_drop_rate"):
            del doc["series"][key]
        proc = run_plot(write_json(os.path.join(self.dir, "r", "plain.json"), doc), "-o", self.out)
        self.assertEqual(self.written(proc), ["final_loads.png", "maxvio.png", "quality.png"])
        for skipped in ("entropy.png", "heatmap_", "drops.png", "timing.png", "bias.png"):
            self.assertIn(skipped, proc.stderr)

    def test_sweep_one_and_two_parameters(self):
        for two in (False, True):
            with self.subTest(two_params=two):
                index = write_demo_sweep(os.path.join(self.dir, f"s{two}"), two_params=two)
                names = self.written(run_plot("--sweep", index, "-o", self.out))
                self.assertEqual(names, ["sweep_drop_rate.png", "sweep_maxvio_global.png",
                                         "sweep_quality_loss.png"])
        proc = run_plot("--sweep", index, "--x", "alpha", "-o", self.out)
        self.written(proc)

    def test_sweep_index_variants_are_tolerated(self):
        index = write_demo_sweep(os.path.join(self.dir, "v"), two_params=False)
        with open(index) as f:
            doc = json.load(f)
        doc["vary"] = {v["path"]: v["values"] for v in doc["vary"]}
        for r in doc["runs"]:
            r["values"] = list(r["values"].values())
            r["results"] = list(r["results"].values())
        doc["runs"].append({"values": [2.0], "results": {"aux": "runs/999/aux.json"}})  # a missing shard
        write_json(index, doc)
        proc = run_plot("--sweep", index, "-o", self.out)
        self.assertEqual(len(self.written(proc)), 3)
        self.assertIn("missing", proc.stderr)

    def test_seed_sweep_bands_and_any_metric(self):
        """A /seed sweep is averaged (band, seed count in the legend); --metrics picks any summary metric."""
        index = write_demo_sweep(os.path.join(self.dir, "seeds"), two_params=False)
        with open(index) as f:
            doc = json.load(f)
        doc["vary"].append({"path": "/seed", "values": [1, 2, 3]})
        runs = []
        for r in doc["runs"]:
            for seed in (1, 2, 3):
                runs.append({"values": dict(r["values"], **{"/seed": seed}), "results": r["results"]})
        doc["runs"] = runs
        write_json(index, doc)
        proc = run_plot("--sweep", index, "--metrics", "drop_rate,step_time_mean,nope", "-o", self.out)
        self.assertEqual(self.written(proc), ["sweep_drop_rate.png", "sweep_step_time_mean.png"])
        self.assertIn("sweep_nope.png skipped", proc.stderr)
        sys.path.insert(0, HERE)
        import plot
        self.assertAlmostEqual(plot.mean_ci([1, 2, 3, 4, 5])[1], 1.96324, places=4)  # as `moesim compare`
        self.assertAlmostEqual(plot.t975(60), 2.0003, places=3)
        self.assertEqual(plot.mean_ci([0.7]), (0.7, 0.0))

    def test_layered_results_and_frozen_router(self):
        """moesim.result/2 nests per-layer loads; an inference run gets no quality figure."""
        doc = make_result("bias", "bias", sc=scenario(steps=30), per_step=True)
        doc["schema"] = "moesim.result/2"
        for key in ("expert_load", "expert_processed", "device_load"):
            doc["per_step"][key] = [[row, row] for row in doc["per_step"][key]]  # two identical layers
        for key in ("expert_load_total", "bias"):
            doc["final"][key] = [doc["final"][key], doc["final"][key]]
        doc["scenario"]["mode"] = "inference"
        bias = np.array(doc["series"]["bias_max"])[:, None] * np.linspace(-1, 1, 32)[None, :]
        doc["per_step"]["bias"] = [[row, row] for row in bias.tolist()]  # record.bias_trajectory
        replicas = np.ones((30, 32), dtype=int)
        replicas[10:, :4] = 2  # record.placement_history: a rebalance at step 10
        doc["per_step"]["replicas"] = [[row, row] for row in replicas.tolist()]
        proc = run_plot(write_json(os.path.join(self.dir, "l", "bias.json"), doc), "-o", self.out)
        names = self.written(proc)
        self.assertIn("heatmap_bias.png", names)
        self.assertIn("bias_trajectory.png", names)
        self.assertIn("placement_history.png", names)
        self.assertNotIn("quality.png", names)
        self.assertIn("quality.png skipped: inference", proc.stderr)
        self.assertIn("has 2 layers", proc.stderr)
        sys.path.insert(0, HERE)
        import plot
        self.assertEqual(plot.one_vector("expert_load_total", [[1, 2], [3, 4]], "x").tolist(), [4, 6])
        self.assertEqual(plot.one_vector("bias", [[1, 2], [3, 4]], "x").tolist(), [1, 2])
        # A strategy keeps its colour whatever else is plotted, and seeds of one strategy share it.
        a = plot.strategy_colours(["none", "bias", "mine"])
        b = plot.strategy_colours(["bias seed 1", "bias seed 2", "aux-0.01"])
        self.assertEqual(a["bias"], b["bias seed 1"])
        self.assertEqual(b["bias seed 1"], b["bias seed 2"])
        self.assertEqual(len(set(a.values())), 3)

    def test_bad_input_exits_2_without_traceback(self):
        good = make_result("x", "aux", per_step=False)
        bad_series = json.loads(json.dumps(good))
        bad_series["series"]["maxvio_batch"] = "oops"
        ragged = make_result("y", "aux", sc=scenario(steps=5))
        ragged["per_step"]["expert_load"][2] = [1, 2]
        cases = {
            "missing.json": None,
            "malformed.json": "{\"schema\": ",
            "list.json": [],
            "wrong_schema.json": {"schema": "something/1"},
            "bad_series.json": bad_series,
            "ragged.json": ragged,
            "index_no_runs.json": {"schema": "moesim.sweep/1", "vary": []},
        }
        for name, content in cases.items():
            with self.subTest(name):
                path = os.path.join(self.dir, name)
                if isinstance(content, str):
                    with open(path, "w") as f:
                        f.write(content)
                elif content is not None:
                    write_json(path, content)
                args = ["--sweep", path] if name.startswith("index") else [path]
                proc = run_plot(*args, "-o", self.out)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertNotIn("Traceback", proc.stderr)
                self.assertIn(name, proc.stderr)
                self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)
        self.assertEqual(run_plot().returncode, 2)
        self.assertEqual(run_plot("--x", "cf", os.path.join(self.dir, "x.json")).returncode, 2)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--demo":
        results = write_demo_results(os.path.join(sys.argv[2], "results"))
        sweep = write_demo_sweep(os.path.join(sys.argv[2], "sweep"))
        print("\n".join(results + [sweep]))
        sys.exit(0)
    unittest.main()
