#!/usr/bin/env python3
"""Tests of tools/plot.py on synthetic moesim result files (stdlib unittest + matplotlib/numpy).

    /usr/bin/python3 tools/plot_test.py            run the tests
    /usr/bin/python3 tools/plot_test.py --demo DIR write the synthetic results and their figures to DIR
"""

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
PLOT = os.path.join(HERE, "plot.py")
sys.path.insert(0, HERE)
import plot  # noqa: E402
import plot_serve  # noqa: E402


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


def serve_scenario(name="serving", rate=4.0, requests=120, disaggregated=False):
    sc = {"name": name, "seed": 1, "mode": "serve",
          "model": {"experts": 32, "top_k": 4, "hidden": 64, "score": "sigmoid"},
          "cluster": {"nodes": 1, "devices_per_node": 4, "placement": "contiguous"},
          "serve": {"arrivals": {"process": "poisson", "rate": rate}, "prompt": 256,
                    "output": {"dist": "uniform", "min": 1, "max": 64}, "requests": requests, "max_running": 16,
                    "max_batch_tokens": 2048, "chunked_prefill": True, "slo": {"ttft": 0.5, "tpot": 0.05}}}
    if disaggregated:
        sc["serve"]["prefill"] = {"nodes": 1, "devices_per_node": 4}
        sc["serve"]["decode"] = {"nodes": 1, "devices_per_node": 8}
    return sc


def make_serve_result(strategy, sc=None, seed=1, slowdown=1.0):
    """A serving result as the spec (notes: serve_result.md) describes it: per-request arrays,
    one series entry per iteration (instance 1 = decode when disaggregated), the summary from them.
    Latency grows with the arrival rate (queueing) and with `slowdown` (imbalance)."""
    sc = sc or serve_scenario()
    rng = np.random.default_rng(seed * 1000 + int(sc["serve"]["arrivals"]["rate"] * 10) + int(slowdown * 7))
    n, rate = sc["serve"]["requests"], sc["serve"]["arrivals"]["rate"]
    arrival = np.cumsum(rng.exponential(1 / rate, n))
    output = rng.integers(2, 65, n)
    output[:5] = 1  # 1-token outputs have tpot 0
    load = rate / 10  # the engine saturates at 10 requests/s
    ttft = slowdown * (0.05 + rng.exponential(0.05 / max(1 - load, 0.05), n))
    tpot = np.where(output > 1, slowdown * (0.02 + 0.01 * load + rng.lognormal(-5, 0.5, n)), 0.0)
    e2e = ttft + tpot * (output - 1)
    finish = arrival + e2e
    duration = float(finish.max() - arrival[0])
    iterations = int(duration / 0.04)
    time = np.sort(rng.uniform(0, duration, iterations))
    instance = np.zeros(iterations, dtype=int)
    if "prefill" in sc["serve"]:
        instance[1::2] = 1
    it_time = np.abs(slowdown * 0.03 + 0.005 * rng.normal(size=iterations))
    queue = rng.poisson(2 * load, iterations)
    running = rng.integers(1, 17, iterations)
    imbalance = np.abs(0.3 * slowdown + 0.05 * rng.normal(size=iterations))
    slo = sc["serve"]["slo"]
    good = (ttft <= slo["ttft"]) & (tpot <= slo["tpot"])
    summary = {"requests_completed": n, "duration": duration, "iterations": iterations,
               "throughput": float(output.sum() / duration), "goodput": float(good.sum() / duration),
               "iteration_time_mean": float(it_time.mean()), "rank_imbalance": float(imbalance.mean()),
               "queue_mean": float(queue.mean()), "migrations": 0, "migration_time": 0.0}
    for key, v in (("ttft", ttft), ("tpot", tpot[output > 1]), ("e2e", e2e)):
        summary[f"{key}_mean"] = float(v.mean())
        for q in (50, 90, 99):
            summary[f"{key}_p{q}"] = float(np.percentile(v, q))
    sc = dict(sc, seed=seed)
    return {"schema": "moesim.result/2", "moesim_version": "0.1.0", "scenario": sc,
            "strategy": {"name": strategy, "balancers": [], "routing": {"type": "none"}}, "seed": seed,
            "summary": summary,
            "series": {"iteration": list(range(iterations)), "instance": instance.tolist(), "time": time.tolist(),
                       "iteration_time": it_time.tolist(), "tokens": (running * 10).tolist(),
                       "prefill_tokens": (running * 8).tolist(), "running": running.tolist(),
                       "queue": queue.tolist(), "rank_imbalance": imbalance.tolist()},
            "requests": {"arrival": arrival.tolist(), "ttft": ttft.tolist(), "tpot": tpot.tolist(),
                         "e2e": e2e.tolist(), "prompt": [256] * n, "output": output.tolist()},
            "series_by_layer": {}, "per_step": {}, "final": {}}


SERVE_STRATEGIES = [("no-eplb", 1.6), ("eplb", 1.0)]


def write_serve_sweep(folder, rates=(1, 2, 4, 8), seeds=(1, 2)):
    """A sweep over /serve/arrivals/rate (and /seed) with two strategies, laid out as `moesim sweep` does."""
    vary = [{"path": "/serve/arrivals/rate", "values": list(rates)}, {"path": "/seed", "values": list(seeds)}]
    runs = []
    for rate in rates:
        for seed in seeds:
            cid = f"{len(runs):03d}-rate={rate}-seed={seed}"
            results = {}
            for name, slowdown in SERVE_STRATEGIES:
                doc = make_serve_result(name, serve_scenario(rate=rate, requests=80), seed, slowdown)
                write_json(os.path.join(folder, cid, f"{name}.json"), doc)
                results[name] = f"{cid}/{name}.json"
            runs.append({"id": cid, "values": {"/serve/arrivals/rate": rate, "/seed": seed}, "results": results})
    return write_json(os.path.join(folder, "index.json"),
                      {"schema": "moesim.sweep/1", "scenario": "serving", "vary": vary, "runs": runs})


def run_plot(*args):
    return subprocess.run([sys.executable, PLOT, *args], capture_output=True, text=True, timeout=300)


class Captured:
    """Runs plot.py in-process with plot.save replaced: the figures stay open for inspection."""

    def __init__(self, test):
        self.figures = {}
        original = plot.save

        def keep(fig, ctx, name):
            self.figures[name] = fig
            ctx.written.append(name)
        plot.save = keep
        test.addCleanup(setattr, plot, "save", original)
        test.addCleanup(plot.plt.close, "all")


def legend_texts(fig):
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


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
        # --layer N picks a layer by its id; an id the result lacks, or malformed ids, are input errors.
        doc["layer_ids"] = [3, 7]
        path = write_json(os.path.join(self.dir, "l", "bias.json"), doc)
        self.assertIn("maxvio.png", self.written(run_plot(path, "--layer", "7", "-o", os.path.join(self.dir, "l7"))))
        for ids, message in (([3, 7], "--layer 5 is not one of this result's layers (3, 7)"),
                             ("3,7", "/layer_ids: expected an array of layer numbers")):
            doc["layer_ids"] = ids
            proc = run_plot(write_json(path, doc), "--layer", "5", "-o", os.path.join(self.dir, "l5"))
            self.assertEqual(proc.returncode, 2, proc.stderr)
            self.assertIn(message, proc.stderr)
            self.assertNotIn("Traceback", proc.stderr)
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

    def test_seeds_are_averaged_with_a_band(self):
        """Results differing only in their seed: one line per strategy, the mean, with a 95% t band."""
        paths, docs = [], {}
        for seed in (1, 2, 3):
            for name, kind in (("aux", "aux"), ("bias", "bias")):
                doc = make_result(name, kind, dict(scenario(steps=30), seed=seed), 10 * seed + len(name), per_step=False)
                doc["seed"] = seed
                docs[name, seed] = doc
                paths.append(write_json(os.path.join(self.dir, "collapse", f"seed-{seed}", f"{name}.json"), doc))
        self.written(run_plot(*paths, "-o", self.out))
        cap = Captured(self)
        plot.plot_results(paths, self.out, 0)
        fig = cap.figures["maxvio.png"]
        texts = legend_texts(fig)
        for label in ("aux (n=3)", "bias (n=3)", "95% interval over seeds (Student t)"):
            self.assertIn(label, texts)
        self.assertFalse(any("seed 1" in t for t in texts), texts)
        self.assertIn("seeds 1, 2, 3", fig._suptitle.get_text())
        ax = fig.axes[0]
        self.assertEqual(len([l for l in ax.get_lines() if l.get_linestyle() == "-"]), 2)  # not 6
        # Step 7 of bias, by hand: mean and t_{0.975,2} = 4.3027 times s/√3.
        values = [docs["bias", seed]["series"]["maxvio_batch"][7] for seed in (1, 2, 3)]
        mean, half = statistics.mean(values), 4.3027 * statistics.stdev(values) / math.sqrt(3)
        self.assertGreater(half, 0)
        self.assertTrue(any(np.allclose(l.get_ydata()[7], mean) for l in ax.get_lines()))
        bands = []
        for c in ax.collections:
            v = np.concatenate([p.vertices for p in c.get_paths()])
            at = v[np.isclose(v[:, 0], 7.0), 1]
            bands.append((at.min(), at.max()))
        self.assertTrue(any(np.allclose(b, (mean - half, mean + half), rtol=1e-4) for b in bands), bands)
        rows = np.array([[1.0, 2.0], [2.0, 4.0], [4.0, 9.0]])
        m, w = plot.band_over_seeds(rows)
        self.assertEqual(tuple(np.round([m[1], w[1]], 10)), tuple(np.round(plot.mean_ci([2, 4, 9]), 10)))
        m, w = plot.band_over_seeds(np.array([[3.0, 5.0]]))  # one seed: the values, no band (not NaN)
        self.assertEqual((m.tolist(), w.tolist()), ([3.0, 5.0], [0.0, 0.0]))

    def test_serve_results(self):
        """Serving results: latency CDFs and quantities over time; step figures skipped with a note."""
        paths = [write_json(os.path.join(self.dir, "serving", f"{name}.json"), make_serve_result(name, slowdown=s))
                 for name, s in SERVE_STRATEGIES]
        proc = run_plot(*paths, "-o", self.out)
        self.assertEqual(self.written(proc), ["latency_cdf.png", "serve_over_time.png"])
        self.assertIn("the step figures (maxvio", proc.stderr)
        # Next to a step-based result, each gets its own figures.
        step = write_json(os.path.join(self.dir, "collapse", "bias.json"), make_result("bias", "bias", per_step=False))
        names = self.written(run_plot(paths[0], step, "-o", os.path.join(self.dir, "mixed")))
        self.assertIn("latency_cdf.png", names)
        self.assertIn("maxvio.png", names)
        # In-process, what the CDF panels draw. One very fast first token makes TTFT span > 2 decades.
        with open(paths[1]) as f:
            doc = json.load(f)
        doc["requests"]["ttft"][0] = 1e-4
        write_json(paths[1], doc)
        cap = Captured(self)
        plot.plot_results(paths, self.out, 0)
        fig = cap.figures["latency_cdf.png"]
        ttft_ax, tpot_ax, e2e_ax = fig.axes[:3]
        self.assertEqual((ttft_ax.get_xscale(), tpot_ax.get_xscale(), e2e_ax.get_xscale()), ("log", "linear", "linear"))
        self.assertEqual(e2e_ax.get_xlabel(), "latency (s)")
        tpot = np.array(doc["requests"]["tpot"])[np.array(doc["requests"]["output"]) > 1]
        self.assertEqual(tpot.size, 115)  # the five 1-token outputs have no TPOT
        curves = [l for l in tpot_ax.get_lines() if len(l.get_xdata()) > 2]
        self.assertEqual(len(curves), 2)
        eplb = [l for l in curves if len(l.get_xdata()) == tpot.size and np.allclose(l.get_xdata(), np.sort(tpot) * 1e3)]
        self.assertEqual(len(eplb), 1)  # in ms: every TPOT is below a second
        self.assertEqual(eplb[0].get_ydata()[-1], 1.0)
        self.assertAlmostEqual(eplb[0].get_ydata()[0], 1 / 115)
        self.assertTrue(any(list(l.get_xdata()) == [500.0, 500.0] for l in ttft_ax.get_lines()))  # slo.ttft 0.5 s
        over = cap.figures["serve_over_time.png"]
        self.assertEqual([a.get_ylabel().split("\n")[0] for a in over.axes[:4]],
                         ["iteration time (ms)", "waiting requests", "running requests", "rank imbalance"])
        queue = over.axes[1].get_lines()
        self.assertEqual(len(queue), 2)  # --smooth 0: one raw line per strategy
        self.assertTrue(any(np.array_equal(l.get_ydata(), doc["series"]["queue"]) for l in queue))
        with open(paths[0]) as f:
            self.assertTrue(np.array_equal(queue[0].get_xdata(), json.load(f)["series"]["time"]))

    def test_serve_disaggregated_marks_the_decode_instance(self):
        doc = make_serve_result("eplb", serve_scenario(name="pd", disaggregated=True))
        doc["series"]["queue"] = [0] * len(doc["series"]["queue"])  # nothing ever waits: no panel
        doc["scenario"]["serve"]["slo"]["ttft"] = 100.0  # far beyond every TTFT: named, not drawn
        path = write_json(os.path.join(self.dir, "pd", "eplb.json"), doc)
        cap = Captured(self)
        plot.plot_results([path], self.out, 0)
        fig = cap.figures["serve_over_time.png"]
        self.assertIn("decode instance", legend_texts(fig))
        self.assertIn("P/D disaggregated", fig._suptitle.get_text())
        self.assertEqual([a.get_ylabel().split("\n")[0] for a in fig.axes], ["iteration time (ms)", "running requests",
                                                                          "rank imbalance"])
        cdf = cap.figures["latency_cdf.png"]
        self.assertIn("SLO target\n(TTFT 100 s, TPOT 0.05 s)", legend_texts(cdf))
        self.assertFalse(any(l.get_xdata()[0] == l.get_xdata()[-1] for l in cdf.axes[0].get_lines()
                             if len(l.get_xdata()) == 2 and l.get_ydata()[0] != l.get_ydata()[-1]))
        self.assertTrue(any(list(l.get_xdata()) == [50.0, 50.0] for l in cdf.axes[1].get_lines()))  # TPOT 50 ms
        instance = np.array(doc["series"]["instance"])
        lines = {l.get_linestyle(): l for l in fig.axes[2].get_lines()}
        self.assertEqual(sorted(lines), ["-", "--"])
        self.assertTrue(np.array_equal(lines["--"].get_xdata(), np.array(doc["series"]["time"])[instance == 1]))
        self.assertTrue(np.array_equal(lines["-"].get_ydata(), np.array(doc["series"]["rank_imbalance"])[instance == 0]))
        bad = json.loads(json.dumps(doc))
        bad["requests"]["ttft"].pop()
        proc = run_plot(write_json(os.path.join(self.dir, "bad", "eplb.json"), bad), "-o", self.out)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("/requests: arrays have different lengths", proc.stderr)

    def test_serve_sweep_throughput_latency(self):
        index = write_serve_sweep(os.path.join(self.dir, "sweep"))
        names = self.written(run_plot("--sweep", index, "--x", "rate", "-o", self.out))
        self.assertEqual(names, ["sweep_goodput.png", "sweep_throughput.png", "sweep_tpot_p99.png",
                                 "sweep_ttft_p99.png", "throughput_latency.png"])
        self.out = os.path.join(self.dir, "chosen")
        names = self.written(run_plot("--sweep", index, "--x", "rate", "--metrics", "ttft_p99,e2e_p99", "-o", self.out))
        self.assertEqual(names, ["sweep_e2e_p99.png", "sweep_ttft_p99.png", "throughput_latency.png"])
        cap = Captured(self)
        plot.plot_sweep(index, "rate", self.out, None, ["e2e_p99"])
        fig = cap.figures["throughput_latency.png"]
        self.assertEqual([a.get_title(loc="left") for a in fig.axes[:3]], ["TTFT p99", "TPOT p99", "end-to-end p99"])
        with open(index) as f:
            runs = json.load(f)["runs"]
        sweep = os.path.dirname(index)
        for name, _ in SERVE_STRATEGIES:
            summaries = {}
            for r in runs:
                with open(os.path.join(sweep, r["results"][name])) as f:
                    summaries.setdefault(r["values"]["/serve/arrivals/rate"], []).append(json.load(f)["summary"])
            x = [statistics.mean(s["throughput"] for s in summaries[rate]) for rate in (1, 2, 4, 8)]
            y = [statistics.mean(s["tpot_p99"] for s in summaries[rate]) for rate in (1, 2, 4, 8)]
            with self.subTest(strategy=name):
                self.assertTrue(any(l.get_marker() == "o" and np.allclose(l.get_xdata(), x) and np.allclose(l.get_ydata(), y)
                                    for l in fig.axes[1].get_lines()))
        self.assertEqual(sorted(t.get_text() for t in fig.axes[0].texts), ["1", "1", "2", "2", "4", "4", "8", "8"])
        self.assertIn("95% interval over seeds", legend_texts(fig))
        self.assertIn("sweep_e2e_p99.png", cap.figures)
        # Not a rate sweep: the generic figures only, with a note.
        other = write_serve_sweep(os.path.join(self.dir, "seeds_only"), rates=(4,))
        with open(other) as f:
            doc = json.load(f)
        doc["vary"] = [v for v in doc["vary"] if v["path"] == "/seed"]
        for r in doc["runs"]:
            del r["values"]["/serve/arrivals/rate"]
        write_json(other, doc)
        proc = run_plot("--sweep", other, "-o", os.path.join(self.dir, "o2"))
        self.assertIn("throughput_latency.png skipped: the sweep does not vary /serve/arrivals/rate", proc.stderr)

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
