"""tools/bench_report.py: targets read from Google Benchmark's JSON, the numpy
references and the sweep time, with ratios worked out by hand."""
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_report  # noqa: E402


def bench(name, **fields):
    return {"name": name, "real_time": fields.pop("real_time", 1.0), "time_unit": fields.pop("time_unit", "ms"),
            **fields}


class BenchReportTest(unittest.TestCase):
    def setUp(self):
        self.benchmarks = [
            bench("BM_Simulate/inference/2/real_time", items_per_second=4.2e6),
            bench("BM_Simulate/train/2/real_time", items_per_second=1.5e6),
            bench("BM_Simulate58Layers/2/iterations:1/real_time", items_per_second=3.9e6),
            bench("BM_SimulateOneLayerV3/2/iterations:1/real_time", items_per_second=4.0e6),
            bench("BM_Simulate58LayersEplb/2/8/iterations:1/real_time", items_per_second=3.9e6),
            bench("BM_Simulate58LayersEplb/2/4/iterations:1/real_time", items_per_second=3.12e6),
            bench("BM_TimingStep58Layers/0/min_time:3.000/real_time", real_time=18.0, **{"events/s": 5e7}),
            bench("BM_TimingStep58Layers/1/min_time:3.000/real_time", real_time=0.025, time_unit="s"),
            bench("BM_RouteStep/1/real_time", items_per_second=1e6),
            bench("BM_RouteStep/2/real_time", items_per_second=1.8e6),
            bench("BM_GatingInCache/2/real_time", items_per_second=8.192e6, real_time=2.0),  # 16 384 tokens
            bench("BM_Gating/2/real_time", items_per_second=8.0e6),
        ]
        self.numpy = {"inference": 2e5, "train": 1e5, "layers58": 1e5, "timing58": 4.0, "sweep64": 2.048e5,
                      "route": 2e5}

    def rows(self, sweep_seconds=480.0):
        return {r[0]: r for r in bench_report.report(self.benchmarks, self.numpy, sweep_seconds)}

    def test_ratios_and_verdicts(self):
        rows = self.rows()
        infer = rows["whole inference step, bench-v3 (tokens/s)"]
        self.assertEqual(infer[1:4], ("4.20 M", "0.200 M", "21.0×"))
        self.assertEqual(infer[5], "met")  # 4.2 M ≥ 4 M and 21× ≥ 20×
        self.assertEqual(rows["  against the gating kernel in the same run"][1:6],
                         ("0.53×", "", "", "≥ 0.5× (4 M's gloss)", "met"))  # 4.2 / 8.0
        # 16 384 tokens: 4.096 ms at 4 M, 2 ms of gating at 8.192 M, 3.901 ms a step at 4.2 M.
        beside = rows["  a step at 4 M: time beside the gating product"]
        self.assertEqual(beside[1:6], ("2.10 ms", "of 4.10 ms", "", "", "takes 1.90 ms now"))
        self.assertEqual(rows["whole training step, bench-v3 (tokens/s)"][5], "NOT met")  # 1.5 M < 2 M
        self.assertEqual(rows["58-layer DeepSeek-V3 step (token-layers/s)"][5], "met (0.93×)")  # 3.9 / 4.2
        self.assertEqual(rows["  the same scenario one layer at a time"][5], "met (0.97×)")  # 3.9 / 4.0
        self.assertEqual(rows["  under EPLB replicas, 8 contiguous groups"][5], "1.00× the 58-layer step")
        nodes = rows["  under EPLB replicas, groups = the 4 nodes"]
        self.assertEqual(nodes[1:6], ("3.12 M", "", "", "", "0.80× the 58-layer step"))  # 3.12 / 3.9
        direct = rows["timing model, 58 layers × 144 devices, direct (decode)"]
        # 18 ms against the numpy bound's 1/4 s: 250/18 = 13.9×; 5e7 events/s.
        self.assertEqual(direct[1:6], ("18 ms, 50.0 M events/s", "250 ms (analytic)", "13.89×", "≤ 20 ms", "met"))
        self.assertEqual(rows["timing model, 58 layers × 144 devices, DeepEP forwarding"][5], "NOT met")  # 25 ms
        sweep = rows["1,000-configuration sweep, bench-sweep.json"]
        # numpy: 1000 × 300 × 4096 tokens / 204 800 tokens/s / 2 cores = 3000 s = 50 min; moesim 480 s = 8 min.
        self.assertEqual(sweep[1:6], ("8.0 min", "50 min", "6.2×", "< 10 min", "met"))
        self.assertEqual(self.rows(600.0)["1,000-configuration sweep, bench-sweep.json"][5], "NOT met")
        self.assertEqual(rows["round 1: second core buys"][1], "1.80×")

    def test_repeated_benchmarks_count_by_their_median(self):
        runs = [bench("BM_Gating/2/real_time_" + name, items_per_second=v, aggregate_name=name)
                for name, v in (("mean", 3e6), ("median", 4e6), ("stddev", 1e5))]
        self.assertEqual(bench_report.rate(runs, "BM_Gating/2/"), 4e6)
        self.assertEqual(bench_report.rate(runs[:1], "BM_Gating/2/"), 3e6)  # no median: the first
        self.assertEqual(bench_report.rate(runs, "BM_Gating/1/"), 0.0)

    def test_load_scales_the_sweep_shard(self):
        with tempfile.TemporaryDirectory() as d:
            paths = [os.path.join(d, n) for n in ("b.json", "n.txt", "s.txt")]
            with open(paths[0], "w", encoding="utf-8") as f:
                json.dump({"benchmarks": self.benchmarks}, f)
            with open(paths[1], "w", encoding="utf-8") as f:
                f.write("inference 200000\ntiming58 4\n")
            with open(paths[2], "w", encoding="utf-8") as f:
                f.write("sweep_ms 20000 25\n")
            benchmarks, numpy, sweep_seconds = bench_report.load(*paths)
        self.assertEqual(len(benchmarks), len(self.benchmarks))
        self.assertEqual(numpy, {"inference": 2e5, "timing58": 4.0})
        self.assertEqual(sweep_seconds, 500.0)  # 20 s × 25 shards


if __name__ == "__main__":
    unittest.main()
