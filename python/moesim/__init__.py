"""moesim from Python: run scenarios and read results as numpy arrays and pandas frames.

    import moesim
    results = moesim.run("scenarios/collapse.json", set={"/steps": 100}, strategies=["none", "bias"])
    results["bias"]["summary"]["maxvio_global"]        # a float
    results["bias"]["series"]["maxvio_batch"]          # a numpy array, one value per recorded step
    df = moesim.to_dataframe(results.values())         # long format: strategy, seed, step, metric, value

A result is the CLI's result file (`moesim run` writes the same JSON) as a dict, with
`series`, `per_step` and `final` entries as numpy arrays (moesim.result/2 adds a layer
axis: per_step [step, layer, expert], final [layer, expert]). `as_json` turns one back.
"""

import json
import os

import numpy as np

from . import _moesim

__all__ = ["run", "load", "from_text", "as_json", "to_dataframe", "summary_frame", "requests_frame", "InputError", "__version__"]
__version__ = _moesim.version
InputError = _moesim.InputError  # bad scenario or override: the CLI's one-line message


def _overrides(set):
    """--set strings from a dict {pointer: value} (values as JSON) or a list of "POINTER=VALUE"."""
    if set is None:
        return []
    if isinstance(set, dict):
        return [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in set.items()]
    return [str(s) for s in set]


def from_text(text):
    """A result file's text as a dict with numpy arrays."""
    doc = json.loads(text)
    for section in ("series", "series_by_layer", "per_step", "final", "requests"):
        if isinstance(doc.get(section), dict):
            doc[section] = {k: np.asarray(v) for k, v in doc[section].items()}
    for index in ("step", "iteration", "instance"):
        if index in doc.get("series", {}):
            doc["series"][index] = doc["series"][index].astype(np.int64)
    return doc


def load(path):
    """Reads a result file written by `moesim run` or `moesim sweep`."""
    with open(path, encoding="utf-8") as f:
        return from_text(f.read())


def as_json(result):
    """A result dict with plain lists again: equal to json.load of the CLI's file."""
    def plain(v):
        if isinstance(v, np.ndarray):
            return v.tolist()
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    return plain(result)


def run(scenario, strategies=None, set=None, seed=None, threads=None, text=False):
    """Runs every strategy (or those named) of a scenario; returns {strategy: result}.

    scenario: a file name, or a dict in the scenario format (the file's JSON).
    set: overrides as {pointer: value} or ["POINTER=VALUE"], applied like `--set`.
    seed: shorthand for set {"/seed": seed}. threads: OpenMP threads (results do not depend on it).
    text: return each result's JSON text (byte for byte the CLI's file) instead of a dict.
    Raises moesim.InputError on bad input, with the CLI's message."""
    overrides = _overrides(set)
    if seed is not None:
        overrides.append(f"/seed={int(seed)}")
    if isinstance(scenario, (str, os.PathLike)):
        pairs = _moesim.run_scenario("", os.fspath(scenario), True, overrides, list(strategies or []), threads)
    elif isinstance(scenario, dict):
        pairs = _moesim.run_scenario(json.dumps(scenario), "<dict>", False, overrides, list(strategies or []), threads)
    else:
        raise TypeError("scenario: expected a file name or a dict")
    return {name: (t if text else from_text(t)) for name, t in pairs}


def _results(results):
    if isinstance(results, dict) and "schema" in results:
        return [results]
    if isinstance(results, dict):
        return list(results.values())
    return list(results)


def to_dataframe(results):
    """Per-step series in long format: one row per (strategy, seed, step, metric) with its value.

    results: one result, a {strategy: result} dict from run(), or any iterable of results
    (dicts from run() or load()). Sweep values are not columns: add them from the scenario echo.
    Serving results (mode serve) have a series per iteration: `step` is then the iteration, and an
    `instance` column says which instance ran it (0: the only or the prefill one, 1: decode)."""
    import pandas as pd
    frames = []
    for r in _results(results):
        series = r.get("series", {})
        serving = "iteration" in series
        index = "iteration" if serving else "step"
        steps = np.asarray(series.get(index, []), dtype=np.int64)
        for metric, values in series.items():
            if metric in (index, "instance") or len(values) != len(steps):
                continue
            frame = {"strategy": r["strategy"]["name"], "seed": r["seed"], "step": steps}
            if serving:
                frame["instance"] = np.asarray(series.get("instance", np.zeros(len(steps))), dtype=np.int64)
            frame.update(metric=metric, value=np.asarray(values, dtype=float))
            frames.append(pd.DataFrame(frame))
    if not frames:
        return pd.DataFrame(columns=["strategy", "seed", "step", "metric", "value"])
    return pd.concat(frames, ignore_index=True)


def summary_frame(results):
    """Summary metrics in long format: one row per (strategy, seed, metric) with its value."""
    import pandas as pd
    rows = [(r["strategy"]["name"], r["seed"], k, float(v)) for r in _results(results)
            for k, v in r.get("summary", {}).items() if isinstance(v, (int, float))]
    return pd.DataFrame(rows, columns=["strategy", "seed", "metric", "value"])


def requests_frame(results):
    """Serving results' per-request records: one row per (strategy, seed, request) with arrival, prompt,
    output, first_token, finish, ttft, tpot and e2e (seconds)."""
    import pandas as pd
    frames = []
    for r in _results(results):
        req = r.get("requests")
        if not req:
            continue
        frame = pd.DataFrame({k: np.asarray(v) for k, v in req.items()})
        frame.insert(0, "request", np.arange(len(frame), dtype=np.int64))
        frame.insert(0, "seed", r["seed"])
        frame.insert(0, "strategy", r["strategy"]["name"])
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["strategy", "seed", "request"])
    return pd.concat(frames, ignore_index=True)
