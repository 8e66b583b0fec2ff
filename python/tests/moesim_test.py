"""The Python module against the CLI: same scenario, same result file.

Run by tools/test with PYTHONPATH=build/python (MOESIM_BUILD_DIR overrides build/)."""

import json
import os
import subprocess
import tempfile
import unittest

import moesim
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.path.join(os.environ.get("MOESIM_BUILD_DIR", os.path.join(ROOT, "build")), "moesim")

SCENARIO = {
    "name": "tiny-py", "seed": 3, "steps": 12,
    "model": {"experts": 8, "top_k": 2, "hidden": 16},
    "batch": {"sequences": 4, "seq_len": 16},
    "cluster": {"nodes": 1, "devices_per_node": 2},
    "strategies": [{"name": "plain"}, {"name": "bias", "balancers": [{"type": "bias", "u": 0.01}]}],
}


class ModuleTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.path = os.path.join(self.dir.name, "s.json")
        with open(self.path, "w") as f:
            json.dump(SCENARIO, f)

    def cli(self, *args):
        out = os.path.join(self.dir.name, "out")
        subprocess.run([BINARY, "run", self.path, "-q", "-o", out, *args], check=True)
        return os.path.join(out, "tiny-py")

    def test_a_run_from_python_equals_the_cli_result_file(self):
        folder = self.cli("--set", "/steps=8")
        from_file = moesim.run(self.path, set={"/steps": 8}, text=True)
        from_dict = moesim.run(SCENARIO, set=["/steps=8"])
        for name in ("plain", "bias"):
            with open(os.path.join(folder, f"{name}.json")) as f:
                text = f.read()
            self.assertEqual(from_file[name], text)  # byte for byte (the file name echo is the same file)
            expected = json.loads(text)
            got = moesim.as_json(from_dict[name])
            # A dict scenario has no file; everything else is the CLI's result.
            self.assertEqual(got["summary"], expected["summary"])
            self.assertEqual(got["series"], expected["series"])
            self.assertEqual(got["per_step"], expected["per_step"])
            self.assertEqual(got["final"], expected["final"])
            self.assertEqual(got["strategy"], expected["strategy"])

    def test_arrays_and_steps(self):
        r = moesim.run(SCENARIO, strategies=["bias"], seed=4, threads=1)["bias"]
        self.assertEqual(r["seed"], 4)
        self.assertEqual(r["series"]["step"].dtype, np.int64)
        self.assertEqual(r["series"]["step"].tolist(), list(range(12)))
        loads = r["per_step"]["expert_load"]
        self.assertEqual(loads.shape, (12, 1, 8))  # steps × layers × experts
        # Every step routes 4·16 tokens to k = 2 experts each.
        self.assertTrue(np.all(loads.sum(axis=2) == 128))

    def test_dataframe_long_format(self):
        results = list(moesim.run(SCENARIO, seed=1).values()) + list(moesim.run(SCENARIO, seed=2).values())
        df = moesim.to_dataframe(results)
        self.assertEqual(list(df.columns), ["strategy", "seed", "step", "metric", "value"])
        n_series = len([k for k in results[0]["series"] if k != "step"])
        self.assertEqual(len(df), 2 * 2 * 12 * n_series)
        one = df[(df.strategy == "bias") & (df.seed == 2) & (df.metric == "maxvio_batch")]
        self.assertEqual(one.value.tolist(), results[3]["series"]["maxvio_batch"].tolist())
        means = moesim.summary_frame(results).pivot_table(index="strategy", columns="metric", values="value")
        self.assertAlmostEqual(means.loc["plain", "tokens"], 12 * 64)

    def test_serving_requests_and_iterations(self):
        serving = {k: v for k, v in SCENARIO.items() if k != "steps"}
        serving.update(mode="serve", strategies=[{"name": "plain"}],
                       serve={"arrivals": {"process": "poisson", "rate": 500}, "prompt": 20, "output": 4,
                              "requests": 30})
        result = moesim.run(serving)["plain"]
        self.assertEqual(result["summary"]["requests_completed"], 30)
        req = moesim.requests_frame(result)
        self.assertEqual(len(req), 30)
        self.assertEqual(req.prompt.tolist(), [20] * 30)
        np.testing.assert_allclose(req.ttft, req.first_token - req.arrival)
        np.testing.assert_allclose(req.ttft.mean(), result["summary"]["ttft_mean"])
        df = moesim.to_dataframe(result)  # one row per iteration and series
        iterations = int(result["summary"]["iterations"])
        self.assertEqual(len(df[df.metric == "tokens"]), iterations)
        self.assertEqual(list(df.columns), ["strategy", "seed", "step", "instance", "metric", "value"])
        self.assertNotIn("instance", set(df.metric))
        # Every request's prompt and output tokens were run: 30 × (20 + 3 decode tokens).
        self.assertEqual(df[df.metric == "tokens"].value.sum(), 30 * 23)

    def test_bad_input_raises_with_the_cli_message(self):
        with self.assertRaises(moesim.InputError) as e:
            moesim.run(SCENARIO, set={"/model/top_k": 99})
        self.assertIn("<dict>: /model/top_k: expected an integer in [1, 8], got 99", str(e.exception))
        with self.assertRaises(moesim.InputError):
            moesim.run(SCENARIO, strategies=["nope"])


if __name__ == "__main__":
    unittest.main()
