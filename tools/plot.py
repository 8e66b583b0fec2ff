#!/usr/bin/env python3
"""Plot moesim result files (schemas moesim.result/1 and /2) and sweep indexes.

    plot.py RESULT.json... [-o OUTDIR]              one figure set per scenario run
    plot.py --sweep INDEX.json [--x PATH] [--metrics a,b] [-o OUTDIR]  summary metrics vs swept value,
                                                    mean and 95% band over the seeds of a /seed sweep

Each strategy keeps one colour in every figure (chosen from its name). A /2 result's
per-layer loads are summed over layers where a figure needs one vector per step. Results
that differ only in their seed are drawn as one line per step figure: the mean over the
seeds with a shaded 95% Student-t band. Serving results (scenario.mode "serve") get their
own figures (plot_serve.py): latency CDFs, quantities over time, and from a sweep over
/serve/arrivals/rate the throughput-latency curve.

Writes PNGs into OUTDIR (default: a plots/ folder beside the first input) and prints their paths.
Figures whose data is absent from every input are skipped with a one-line note
on stderr. Bad input (missing file, malformed JSON, wrong shape) exits with
status 2 and one message naming the file and the JSON pointer at fault.

Dependencies: Python 3, numpy and matplotlib (3.6+) only.
"""

import argparse
import json
import math
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)
import numpy as np  # noqa: E402
from matplotlib import colors, ticker  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

# plot_serve imports this file as `plot`; run as a script it is __main__, so register it under
# that name too, or plot_serve would load a second copy (with its own InputError and notes).
sys.modules.setdefault("plot", sys.modules[__name__])
import plot_serve  # noqa: E402

RESULT_SCHEMA = "moesim.result/1"
RESULT_SCHEMAS = ("moesim.result/1", "moesim.result/2")
SWEEP_SCHEMA_PREFIX = "moesim.sweep/"
DPI = 120
SWEEP_METRICS = [  # (summary key, title, axis label, as percent)
    ("drop_rate", "drop rate", "share of assignments dropped", True),
    ("quality_loss", "quality loss", "quality loss (task-loss proxy, lower is better)", False),
    ("maxvio_global", "MaxVio_global", "MaxVio_global = (max − mean) / mean of run totals", False),
]


class InputError(Exception):
    """Bad input: reported as one line, exit status 2."""


_NOTED = set()


def note(message):
    """One line on stderr, each message once."""
    if message not in _NOTED:
        _NOTED.add(message)
        print(f"note: {message}", file=sys.stderr)


# --------------------------------------------------------------------------- loading


def read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a JSON file") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e.reason})") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror})") from None


def _is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def to_vector(value, path, where):
    """A JSON list of finite numbers as a float array."""
    if not isinstance(value, list) or not all(_is_number(x) for x in value):
        raise InputError(f"{path}: {where}: expected a list of numbers")
    a = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(a)):
        raise InputError(f"{path}: {where}: contains a non-finite number")
    return a


def to_matrix(value, path, where):
    """A JSON list of equal-length lists of finite numbers as a 2-D float array."""
    if not isinstance(value, list):
        raise InputError(f"{path}: {where}: expected a list of rows")
    rows = [to_vector(row, path, f"{where}/{i}") for i, row in enumerate(value)]
    if len({len(r) for r in rows}) > 1:
        raise InputError(f"{path}: {where}: rows have different lengths")
    return np.vstack(rows) if rows and len(rows[0]) else np.zeros((len(rows), 0))


def _depth(value):
    """Nesting depth of a JSON list (0 for a number)."""
    d = 0
    while isinstance(value, list) and value:
        value, d = value[0], d + 1
    return d


def per_layer_state(key):
    """A per-layer state (bias, replicas) rather than a load: layers are not summed, layer 0 is shown."""
    return "bias" in key or key == "replicas"


def one_vector_per_step(key, value, path, layer=None):
    """per_step/<key> as steps × experts: moesim.result/2 nests [step][layer][expert]; with `layer`
    (an index) that layer, else loads are summed over layers and a per-layer state (bias, replicas)
    is layer 0's."""
    if _depth(value) < 3:
        return to_matrix(value, path, f"/per_step/{key}")
    layers = [to_matrix(step, path, f"/per_step/{key}/{i}") for i, step in enumerate(value)]
    if len({m.shape for m in layers}) > 1:
        raise InputError(f"{path}: /per_step/{key}: steps have different layer × expert shapes")
    cube = np.stack(layers)
    if layer is not None:
        return cube[:, layer, :]
    if cube.shape[1] > 1:
        note(f"{path}: /per_step/{key} has {cube.shape[1]} layers; figures use "
             + ("layer 0" if per_layer_state(key) else "their sum") + " (--layer N picks one)")
    return cube[:, 0, :] if per_layer_state(key) else cube.sum(axis=1)


def one_vector(key, value, path, layer=None):
    """final/<key> as one vector: /2's [layer][expert] for `layer` (an index), else summed over
    layers (a bias: layer 0)."""
    if _depth(value) < 2:
        return to_vector(value, path, f"/final/{key}")
    m = to_matrix(value, path, f"/final/{key}") if len({len(r) for r in value}) == 1 else None
    if m is None:
        raise InputError(f"{path}: /final/{key}: layers have different lengths")
    if layer is not None and m.shape[0] > layer:
        return m[layer]
    return m[0] if per_layer_state(key) else m.sum(axis=0)


# `--layer N`: per-step and final figures show MoE layer N (its id) alone.
SELECTED_LAYER = None


def layer_index(doc, path):
    """Index of SELECTED_LAYER among the result's layer_ids (None: all layers)."""
    if SELECTED_LAYER is None:
        return None
    ids = doc.get("layer_ids") or [0]
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise InputError(f"{path}: /layer_ids: expected an array of layer numbers")
    if SELECTED_LAYER not in ids:
        raise InputError(f"{path}: /layer_ids: --layer {SELECTED_LAYER} is not one of this result's layers "
                         f"({', '.join(str(i) for i in ids)})")
    return ids.index(SELECTED_LAYER)


def _object(doc, key, path):
    """doc[key] as an object ({} when absent)."""
    value = doc.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{path}: /{key}: expected an object")
    return value


@dataclass
class Run:
    """One strategy's result file, validated."""

    path: str
    scenario: dict
    scenario_name: str
    strategy: str
    seed: object
    summary: dict
    series: dict  # name -> 1-D array
    per_step: dict  # name -> 2-D array (rows = recorded steps)
    final: dict  # name -> 1-D array
    layer_ids: list = field(default_factory=lambda: [0])  # the model's MoE layers
    by_layer: dict = field(default_factory=dict)  # summary_by_layer: name -> 1-D array over layers
    layer_loads: object = None  # final expert_load_total as layers × experts (None for /1)
    label: str = ""  # unique display name, set by label_runs
    requests: dict = field(default_factory=dict)  # serve results: per-request arrays (ttft, tpot, e2e, ...)
    config: str = ""  # the echoed scenario and strategy without the seed: equal for runs differing only in it
    samples: dict = field(default_factory=dict)  # a seed group's mean run: series name -> seeds × steps

    def steps(self):
        if "step" in self.series:
            return self.series["step"]
        n = max((len(v) for v in self.series.values()), default=0)
        return np.arange(n, dtype=float)

    def xy(self, key):
        """(steps, values) of a series, or None when absent or misaligned."""
        y = self.series.get(key)
        if y is None or len(y) == 0:
            return None
        x = self.steps()
        if len(x) != len(y):
            note(f"{self.path}: /series/{key} has {len(y)} values for {len(x)} steps; not plotted")
            return None
        return x, y


def load_result(path):
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise InputError(f"{path}: expected a JSON object (a moesim result file)")
    schema = doc.get("schema")
    if not isinstance(schema, str) or not schema.startswith("moesim.result/"):
        raise InputError(f"{path}: /schema: expected \"{RESULT_SCHEMA}\", got {json.dumps(schema)}; "
                         "not a moesim result file")
    if schema not in RESULT_SCHEMAS:
        note(f"{path}: schema {schema}, this script knows {', '.join(RESULT_SCHEMAS)}; plotting what it recognises")
    scenario = _object(doc, "scenario", path)
    strategy = _object(doc, "strategy", path)
    fallback = os.path.splitext(os.path.basename(path))[0]
    summary = {}
    for key, value in _object(doc, "summary", path).items():
        if not _is_number(value) or not math.isfinite(value):
            raise InputError(f"{path}: /summary/{key}: expected a finite number")
        summary[key] = float(value)
    layer = layer_index(doc, path)
    totals = _object(doc, "final", path).get("expert_load_total")
    layer_loads = to_matrix(totals, path, "/final/expert_load_total") if _depth(totals) == 2 else None
    layer_ids = list(doc.get("layer_ids") or [])
    echo = {k: v for k, v in scenario.items() if k not in ("seed", "strategies")}  # as `moesim compare` groups
    if layer_loads is not None and len(layer_ids) != layer_loads.shape[0]:
        layer_ids = list(range(layer_loads.shape[0]))  # ids missing or inconsistent: number the layers
    return Run(
        path=path,
        scenario=scenario,
        scenario_name=str(scenario.get("name") or os.path.basename(os.path.dirname(os.path.abspath(path)))),
        strategy=str(strategy.get("name") or fallback),
        seed=doc.get("seed", scenario.get("seed")),
        summary=summary,
        series={k: to_vector(v, path, f"/series/{k}") for k, v in _object(doc, "series", path).items()},
        per_step={k: one_vector_per_step(k, v, path, layer) for k, v in _object(doc, "per_step", path).items()},
        final={k: one_vector(k, v, path, layer) for k, v in _object(doc, "final", path).items()},
        layer_ids=layer_ids or [0],
        by_layer={k: to_vector(v, path, f"/summary_by_layer/{k}")
                  for k, v in _object(doc, "summary_by_layer", path).items()},
        layer_loads=layer_loads,
        requests=plot_serve.read_requests(doc, path),
        config=json.dumps([echo, strategy], sort_keys=True),
    )


def label_runs(runs):
    """Give each run a unique legend label (the strategy name, disambiguated when repeated)."""
    counts = {}
    for r in runs:
        counts[r.strategy] = counts.get(r.strategy, 0) + 1
    several_scenarios = len({r.scenario_name for r in runs}) > 1
    seen = {}
    for r in runs:
        same = [o for o in runs if o.strategy == r.strategy and o.scenario_name == r.scenario_name]
        if counts[r.strategy] == 1:
            r.label = r.strategy
        elif len({str(o.seed) for o in same}) == len(same) and not several_scenarios:
            r.label = f"{r.strategy} seed {r.seed}"  # one run per seed: same colour, told apart by seed
        elif several_scenarios:
            r.label = f"{r.strategy} [{r.scenario_name}]"
        else:
            seen[r.strategy] = seen.get(r.strategy, 0) + 1
            r.label = f"{r.strategy} #{seen[r.strategy]}"


def seed_groups(runs, ctx):
    """[(label, runs)]: runs that differ only in their seed form one group, in first-seen order. A group
    of several seeds is labelled by its strategy and n, in its strategy's colour; anything else (one
    run, or a seed repeated) stays one group per run."""
    by_config = {}
    for r in runs:
        by_config.setdefault(r.config or r.path, []).append(r)
    groups = []
    for members in by_config.values():
        if len(members) == 1 or len({str(m.seed) for m in members}) < len(members):
            groups += [(m.label, [m]) for m in members]
            continue
        label = f"{re.sub(r' seed .*$', '', members[0].label)} (n={len(members)})"
        ctx.colours.setdefault(label, ctx.colours[members[0].label])
        groups.append((label, members))
    return groups


def seed_means(runs, ctx):
    """The runs a step figure draws: a group of seeds becomes one run whose series are the mean over
    its seeds, each seed's series kept in `samples` for the band. Seeds recorded at different steps
    cannot be averaged step by step and stay separate lines."""
    out = []
    for label, members in seed_groups(runs, ctx):
        steps = members[0].steps()
        if len(members) == 1 or any(not np.array_equal(m.steps(), steps) for m in members[1:]):
            if len(members) > 1:
                note(f"{label}: seeds recorded at different steps; drawn one line per seed")
            out += members
            continue
        samples = {k: np.vstack([m.series[k] for m in members]) for k in members[0].series
                   if all(len(m.series.get(k, ())) == len(steps) for m in members)}
        first = members[0]
        out.append(Run(path=first.path, scenario=first.scenario, scenario_name=first.scenario_name,
                       strategy=first.strategy, seed=None, summary={},
                       series={k: v.mean(axis=0) for k, v in samples.items()}, per_step={}, final={},
                       label=label, config=first.config, samples=samples))
    return out


def band_over_seeds(rows):
    """(mean, 95% Student-t half-width) of each column of a seeds × steps array (mean_ci per column)."""
    n = rows.shape[0]
    if n < 2:  # one seed: no interval (as mean_ci)
        return rows.mean(axis=0), np.zeros(rows.shape[1:])
    return rows.mean(axis=0), t975(n - 1) * rows.std(axis=0, ddof=1) / math.sqrt(n)


@dataclass
class Sweep:
    scenario: str
    params: list  # JSON pointers that vary, in index order
    runs: list  # [(values: {pointer: value}, [(strategy name or None, result path)])]


def read_sweep_index(path):
    """Read a sweep index tolerantly. Accepted shapes (schema moesim.sweep/1 and close variants):
    vary: [{"path": P, "values": [...]}] | {P: [...]} | [P, ...];
    runs[i].values: {P: v} | [v, ...] (in vary order);
    runs[i].results: {strategy: file} | [file, ...] | file   (relative to the index's folder)."""
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise InputError(f"{path}: expected a JSON object (a moesim sweep index)")
    schema = doc.get("schema")
    if schema is not None and not str(schema).startswith(SWEEP_SCHEMA_PREFIX):
        raise InputError(f"{path}: /schema: expected \"{SWEEP_SCHEMA_PREFIX}1\", got {json.dumps(schema)}")
    vary = doc.get("vary") or []
    if isinstance(vary, dict):
        params = [str(p) for p in vary]
    elif isinstance(vary, list):
        params = [str(v.get("path")) if isinstance(v, dict) else str(v) for v in vary]
    else:
        raise InputError(f"{path}: /vary: expected a list of {{\"path\", \"values\"}} objects")
    raw_runs = doc.get("runs", doc.get("configurations"))
    if not isinstance(raw_runs, list) or not raw_runs:
        raise InputError(f"{path}: /runs: expected a non-empty list of runs")
    base = os.path.dirname(os.path.abspath(path))
    runs = []
    for i, r in enumerate(raw_runs):
        if not isinstance(r, dict):
            raise InputError(f"{path}: /runs/{i}: expected an object")
        values = r.get("values", {})
        if isinstance(values, list) and len(values) == len(params):
            values = dict(zip(params, values))
        if not isinstance(values, dict):
            raise InputError(f"{path}: /runs/{i}/values: expected an object {{pointer: value}}")
        for p in values:
            if p not in params:
                params.append(p)
        results = r.get("results", r.get("result", r.get("files")))
        if isinstance(results, str):
            results = [results]
        if isinstance(results, list):
            results = [(None, f) for f in results]
        elif isinstance(results, dict):
            results = list(results.items())
        else:
            raise InputError(f"{path}: /runs/{i}/results: expected an object {{strategy: result file}}")
        for name, f in results:
            if not isinstance(f, str):
                raise InputError(f"{path}: /runs/{i}/results: expected file names, got {json.dumps(f)}")
        runs.append((values, [(name, os.path.join(base, f)) for name, f in results]))
    scenario = doc.get("scenario")
    if isinstance(scenario, dict):
        scenario = scenario.get("name")
    return Sweep(str(scenario or os.path.splitext(os.path.basename(path))[0]), params, runs)


# --------------------------------------------------------------------------- style


STYLE = {
    "figure.dpi": DPI, "savefig.dpi": DPI, "font.size": 10, "axes.titlesize": 10.5,
    "axes.labelsize": 10, "figure.titlesize": 12, "figure.titleweight": "bold",
    "legend.fontsize": 9, "legend.frameon": False, "axes.grid": True, "grid.alpha": 0.3,
    "grid.linewidth": 0.6, "axes.spines.top": False, "axes.spines.right": False,
    "lines.linewidth": 1.6, "figure.constrained_layout.use": True,
}


@dataclass
class Ctx:
    """What every figure function needs: titles, colours, output folder, smoothing."""

    outdir: str
    title: str  # scenario name(s)
    facts: str  # one line of scenario facts under the title
    colours: dict = field(default_factory=dict)  # run label -> colour
    smooth: object = None  # None = automatic, else window in steps
    step_label: str = "training step"
    written: list = field(default_factory=list)


# Colours are fixed per strategy name, so a strategy looks the same in every figure of a
# report (and across reports): the usual names have their own, others a stable hash.
KNOWN_COLOURS = {"none": 7, "no-eplb": 7, "bias": 0, "eplb": 0, "aux": 1, "aux-0.001": 8, "aux-0.01": 1,
                 "aux-0.1": 3, "v3": 2, "bias+seq-aux": 2}


def strategy_name(label):
    """The strategy part of a run label ("bias seed 2" -> "bias")."""
    return re.split(r" seed | #| \[", label)[0]


def strategy_colours(labels):
    """{label: colour}: a strategy's colour from its name; runs of one strategy share it."""
    cmap = plt.get_cmap("tab10")
    used, by_name = set(), {}
    names = list(dict.fromkeys(strategy_name(l) for l in labels))
    # Known names first, then by name: the colours depend on the set of strategies only, not on the
    # order results were given in (a run's glob and a sweep's index list them differently).
    for name in sorted(names, key=lambda n: (n not in KNOWN_COLOURS, n)):
        i = KNOWN_COLOURS.get(name)
        if i is None or i in used:
            i = sum(map(ord, name)) % cmap.N
            for _ in range(cmap.N):  # the next free colour, while any is free
                if i not in used:
                    break
                i = (i + 1) % cmap.N
        used.add(i)
        by_name[name] = cmap(i)
    return {label: by_name[strategy_name(label)] for label in labels}


def section(doc, key):
    """doc[key] if it is an object, else {} (the scenario echo is informative only)."""
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def scenario_facts(runs):
    """One line of facts about the runs' (one) scenario, with their seeds."""
    s = runs[0].scenario
    model, cluster = section(s, "model"), section(s, "cluster")
    parts = []
    if "experts" in model:
        parts.append(f"{model['experts']} experts" + (f", top-{model['top_k']}" if "top_k" in model else ""))
    if "nodes" in cluster and "devices_per_node" in cluster:
        parts.append(f"{cluster['nodes']}×{cluster['devices_per_node']} devices")
    if "steps" in s and s.get("mode") != "serve":
        parts.append(f"{s['steps']} steps")
    parts += plot_serve.serve_facts(s)
    seeds = list(dict.fromkeys(str(r.seed) for r in runs if r.seed is not None))
    if seeds:
        parts.append(f"seed{'s' if len(seeds) > 1 else ''} {', '.join(seeds)}")
    return ", ".join(parts)


def new_figure(ctx, what, nrows=1, ncols=1, size=(9.0, 4.2), **kw):
    fig, axes = plt.subplots(nrows, ncols, figsize=size, squeeze=False, **kw)
    fig.suptitle(f"{ctx.title} — {what}" + (f"\n{ctx.facts}" if ctx.facts else ""))
    return fig, axes


def legend_right(ax, handles, title=None):
    """The legend outside, right of the top-right axes (constrained layout makes room for it)."""
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, title=title)


def strategy_handles(ctx, labels):
    return [Line2D([], [], color=ctx.colours[l], lw=2.2, label=l) for l in labels]


def save(fig, ctx, name):
    """Write atomically: a temporary file in the same folder, then os.replace."""
    final = os.path.join(ctx.outdir, name)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=ctx.outdir)
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png", dpi=DPI)
        os.replace(tmp, final)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        plt.close(fig)
    ctx.written.append(final)


def step_spacing(x):
    return float(np.median(np.diff(x))) if len(x) > 1 else 1.0


def smooth_half(ctx, x):
    """Half-width, in recorded samples, of the moving average for a curve sampled at steps x."""
    if ctx.smooth is not None:
        return int(ctx.smooth / max(step_spacing(x), 1e-12)) // 2
    return round(len(x) / 60) if len(x) >= 60 else 0


def moving_average(y, half):
    """Centred moving average over 2·half+1 samples, windows shrinking at the ends (same length as y)."""
    c = np.concatenate([[0.0], np.cumsum(y)])
    i = np.arange(len(y))
    lo, hi = np.maximum(0, i - half), np.minimum(len(y), i + half + 1)
    return (c[hi] - c[lo]) / (hi - lo)


def step_axis(ax, ctx):
    ax.set_xlabel(ctx.step_label)
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True, steps=[1, 2, 2.5, 5, 10]))


def pow2_label(v, _pos=None):
    if v >= 1:
        return f"{v:g}×"
    return f"1/{1 / v:g}×"


# --------------------------------------------------------------------------- line figures


@dataclass
class Panel:
    """One axes of a line figure: series drawn per strategy.

    keys: [(series name, linestyle, legend text)]; the first is the main (smoothed)
    curve, the others are drawn raw in their linestyle and named in the legend. band: (low, high) series drawn
    as a shaded range. zero_is_absent: a strategy whose series are all zero
    (e.g. bias of a strategy without a bias balancer) is left out."""

    keys: list
    ylabel: str
    scale: float = 1.0
    percent: bool = False
    log: object = False  # True, False or "auto"
    ylim: tuple = (None, None)
    band: tuple = None
    zero_is_absent: bool = False

    def series_names(self):
        return [k[0] for k in self.keys] + list(self.band or ())

    def data(self, run):
        """{name: (x, y)} of this panel's series for a run, or None if the run has none of them."""
        got = {}
        for name in self.series_names():
            xy = run.xy(name)
            if xy is not None:
                got[name] = xy
        if self.keys[0][0] not in got and not (self.band and all(b in got for b in self.band)):
            return None
        if self.zero_is_absent and all(not np.any(y) for _, y in got.values()):
            return None
        return got


def draw_panel(ax, ctx, panel, runs):
    """Draw one panel; returns the labels of the strategies drawn."""
    drawn, positives, seed_bands = [], [], []
    for run in runs:
        data = panel.data(run)
        if data is None:
            continue
        colour = ctx.colours[run.label]
        if panel.band and all(b in data for b in panel.band):
            (x, lo), (_, hi) = data[panel.band[0]], data[panel.band[1]]
            ax.fill_between(x, lo * panel.scale, hi * panel.scale, color=colour, alpha=0.18, lw=0)
        for i, (name, style, _) in enumerate(panel.keys):
            if name not in data:
                continue
            x, y = data[name]
            y = y * panel.scale
            positives.append(y[y > 0])
            seeds = run.samples.get(name) if i == 0 else None  # seeds × steps of a seed group's mean
            half = smooth_half(ctx, x) if i == 0 else 0
            if half > 0:
                ax.plot(x, y, color=colour, lw=0.7, alpha=0.3)
                y = moving_average(y, half)
                if seeds is not None:  # the band of the drawn (averaged) curve: smooth each seed first
                    seeds = np.vstack([moving_average(row, half) for row in seeds])
            if seeds is not None:
                _, width = band_over_seeds(seeds * panel.scale)
                seed_bands.append((x, y - width, y + width, colour))
            ax.plot(x, y, color=colour, ls=style, lw=1.8 if i == 0 else 1.4)
        drawn.append(run.label)
    use_log = panel.log
    if use_log == "auto":
        pos = np.concatenate(positives) if positives else np.array([])
        use_log = pos.size > 0 and np.percentile(pos, 95) / max(np.percentile(pos, 5), 1e-12) > 50
    if use_log:
        ax.set_yscale("log", nonpositive="mask")
    # Drawn once the scale is known: on a log axis an interval reaching below zero ends at the
    # panel's floor (half its smallest positive value) rather than breaking the shading.
    floor = 0.5 * min((float(p.min()) for p in positives if p.size), default=0.0) if use_log else -math.inf
    for x, low, high, colour in seed_bands:
        ax.fill_between(x, np.maximum(low, floor), high, color=colour, alpha=0.2, lw=0, zorder=1)
    ax.set_ylabel(panel.ylabel + (" (log scale)" if use_log else ""))
    if panel.percent:
        ax.yaxis.set_major_formatter(ticker.PercentFormatter(1.0, decimals=None))
    if not use_log:
        ax.set_ylim(*panel.ylim)
    step_axis(ax, ctx)
    return drawn


def line_figure(runs, ctx, name, what, panels, skip_if_all_zero=False, extra=None):
    """A figure of one or more stacked panels sharing the step axis, one colour per strategy;
    extra(ax), if given, draws one more panel below them on its own x axis. Runs differing only in
    their seed are drawn as their mean with a 95% band."""
    runs = seed_means(runs, ctx)
    present = [p for p in panels if any(p.data(r) is not None for r in runs)]
    if not present:
        what_missing = "nonzero series" if panels[0].zero_is_absent else "series"
        note(f"{name} skipped: no input has {what_missing} {', '.join(panels[0].series_names())}")
        return
    if skip_if_all_zero and all(not np.any(y) for p in present for r in runs
                                for _, y in (p.data(r) or {}).values()):
        note(f"{name} skipped: {', '.join(present[0].series_names())} is 0 throughout for every strategy")
        return
    rows = len(present) + (1 if extra else 0)
    fig, axes = new_figure(ctx, what, nrows=rows, size=(9.0, 1.2 + 3.0 * rows), sharex=extra is None)
    panel_axes = list(axes[:len(present), 0])
    for ax in panel_axes[1:] if extra else []:
        ax.sharex(panel_axes[0])
    drawn = []
    for ax, panel in zip(panel_axes, present):
        drawn += [l for l in draw_panel(ax, ctx, panel, runs) if l not in drawn]
        if ax is not panel_axes[-1]:
            ax.set_xlabel("")
    if extra:
        extra(axes[-1, 0])
    missing = [r.label for r in runs if r.label not in drawn]
    handles = strategy_handles(ctx, drawn)
    handles += [Line2D([], [], color="0.3", ls=style, label=text) for p in present for _, style, text in p.keys[1:]]
    if present[0].band:
        handles.append(Patch(color="0.6", alpha=0.4, label="min … max over experts"))
    if any(r.samples for r in runs):
        handles.append(Patch(color="0.6", alpha=0.4, label="95% interval over seeds (Student t)"))
    longest = max((r.steps() for r in runs), key=len)
    half = smooth_half(ctx, longest)
    span = (2 * half + 1) * step_spacing(longest)
    legend_right(axes[0, -1], handles, title=f"thick: {span:g}-step average" if half > 0 else None)
    if missing:
        why = "series absent or all zero" if present[0].zero_is_absent else "series absent"
        note(f"{name}: not drawn for {', '.join(missing)} ({why})")
    save(fig, ctx, name)


def fig_maxvio(runs, ctx):
    line_figure(runs, ctx, "maxvio.png", "load imbalance per step", [
        Panel([("maxvio_batch", "-", "MaxVio_batch"), ("maxvio_global", "--", "MaxVio_global (cumulative)")],
              "MaxVio = (max load − mean) / mean", log="auto")])


def fig_entropy(runs, ctx):
    line_figure(runs, ctx, "entropy.png", "routing entropy per step", [
        Panel([("entropy_norm", "-", "")], "normalised entropy H / ln E  (1 = uniform)", ylim=(None, 1.02))])


def fig_drops(runs, ctx):
    line_figure(runs, ctx, "drops.png", "dropped assignments per step", [
        Panel([("drop_rate", "-", ""), ("token_drop_rate", ":", "tokens fully dropped")],
              "share of assignments dropped", percent=True, ylim=(0, None))], skip_if_all_zero=True)


def fig_quality(runs, ctx):
    trained = [r for r in runs if r.scenario.get("mode") != "inference"]
    if not trained:
        note("quality.png skipped: inference runs keep the router frozen, so the quality loss says nothing "
             "about the strategies")
        return
    line_figure(trained, ctx, "quality.png", "quality loss per step", [
        Panel([("quality_loss", "-", "")], "task-loss proxy (lower is better)")], skip_if_all_zero=True)


def fig_rank_imbalance(runs, ctx):
    line_figure(runs, ctx, "rank_imbalance.png", "rank imbalance per step", [
        Panel([("rank_imbalance", "-", "")], "max / mean − 1 of per-device load", ylim=(0, None))],
        skip_if_all_zero=True)


# final/critical_timeline: 8 numbers per (layer, micro-batch) cell of the last step's critical device.
TIMELINE_FIELDS = 8
# (label, start field, end field, colour): the Gantt bars of one cell, in time order.
TIMELINE_PHASES = [("dense part", 2, 3, "0.45"), ("waiting for dispatch", 3, 4, "tab:blue"),
                   ("waiting for the compute unit", 4, 5, "0.8"), ("expert compute", 5, 6, "tab:orange"),
                   ("waiting for combine", 6, 7, "tab:green")]


def timelines(runs):
    """(label, cells array) per run and micro-batch that has a well-formed critical_timeline."""
    rows = []
    for run in runs:
        t = run.final.get("critical_timeline")
        if t is None or t.size == 0 or t.size % TIMELINE_FIELDS:
            continue
        cells = t.reshape(-1, TIMELINE_FIELDS)
        device = run.final.get("critical_device")
        who = f"{run.label}, device {int(device.ravel()[0])}" if device is not None and device.size else run.label
        micro_batches = sorted(set(cells[:, 1].astype(int)))
        for mb in micro_batches:
            rows.append((who + (f", micro-batch {mb}" if len(micro_batches) > 1 else ""), cells[cells[:, 1] == mb]))
    return rows


def draw_timeline(ax, rows, scale, unit):
    """Gantt chart of the critical device: where each layer's time goes."""
    for y, (_, cells) in enumerate(rows):
        for _, a, b, colour in TIMELINE_PHASES:
            spans = [(s * scale, (e - s) * scale) for s, e in zip(cells[:, a], cells[:, b]) if e > s]
            ax.broken_barh(spans, (y - 0.38, 0.76), color=colour, lw=0)
    ax.set_yticks(range(len(rows)), [label for label, _ in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, None)
    ax.set_xlabel(f"time within the last step ({unit}); one block per layer, critical device")
    legend_right(ax, [Patch(color=c, label=l) for l, _, _, c in TIMELINE_PHASES])


def fig_timing(runs, ctx):
    times = [y for r in runs for y in [r.series.get("step_time")] if y is not None and len(y)]
    peak = max((float(np.max(y)) for y in times), default=0.0)
    scale, unit = next(((s, u) for s, u, limit in ((1e6, "µs", 1e-3), (1e3, "ms", 1.0), (1.0, "s", math.inf))
                        if peak < limit))
    rows = timelines(runs)
    line_figure(runs, ctx, "timing.png", "simulated step time", [
        Panel([("step_time", "-", ""), ("compute_time", ":", "busiest device's expert compute")],
              f"step time ({unit})", scale=scale, ylim=(0, None)),
        Panel([("idle_fraction", "-", "")], "idle fraction of devices", percent=True, ylim=(0, None))],
        skip_if_all_zero=True, extra=(lambda ax: draw_timeline(ax, rows, scale, unit)) if rows else None)


def fig_bias(runs, ctx):
    line_figure(runs, ctx, "bias.png", "expert bias per step (mean line, min…max band)", [
        Panel([("bias_mean", "-", "")], "bias b (added to routing scores)", band=("bias_min", "bias_max"),
              zero_is_absent=True)])


# --------------------------------------------------------------------------- load figures


def load_ratio(loads):
    """Per-step expert load divided by that step's mean load c̄ (NaN where a step routed nothing)."""
    mean = loads.mean(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mean > 0, loads / np.where(mean > 0, mean, 1), np.nan)


def fig_heatmaps(runs, ctx):
    have = [r for r in runs if r.per_step.get("expert_load") is not None and r.per_step["expert_load"].size]
    if not have:
        note("heatmap_<strategy>.png skipped: no input has per_step/expert_load (set record.per_step_loads)")
        return
    ratios = {r.label: load_ratio(r.per_step["expert_load"]) for r in have}
    top = max(float(np.nanmax(q)) if np.any(np.isfinite(q)) else 1.0 for q in ratios.values())
    lim = 2.0 ** min(8, max(1, math.ceil(math.log2(max(top, 1.0 + 1e-9)))))  # shared, symmetric in log2
    norm = colors.LogNorm(vmin=1 / lim, vmax=lim)
    cmap = plt.get_cmap("RdBu_r").copy()
    cmap.set_bad("0.8")
    for run in have:
        q = ratios[run.label]
        steps = run.steps() if len(run.steps()) == q.shape[0] else np.arange(q.shape[0], dtype=float)
        dx = step_spacing(steps)
        fig, axes = new_figure(ctx, f"expert load / mean per step: {run.label}", size=(9.0, 4.6))
        ax = axes[0, 0]
        im = ax.imshow(np.maximum(q, 1 / lim).T, aspect="auto", origin="lower", interpolation="nearest",
                       cmap=cmap, norm=norm,
                       extent=(steps[0] - dx / 2, steps[-1] + dx / 2, -0.5, q.shape[1] - 0.5))
        step_axis(ax, ctx)
        ax.set_ylabel("expert index")
        ax.yaxis.set_major_locator(ticker.MaxNLocator(integer=True, nbins=8))
        ax.grid(False)
        cbar = fig.colorbar(im, ax=ax, extend="min", pad=0.02)
        cbar.set_ticks([2.0 ** e for e in range(-int(math.log2(lim)), int(math.log2(lim)) + 1)])
        cbar.ax.yaxis.set_major_formatter(ticker.FuncFormatter(pow2_label))
        cbar.ax.yaxis.set_minor_locator(ticker.NullLocator())
        cbar.set_label("routed load / mean load c̄  (white = balanced)")
        save(fig, ctx, f"heatmap_{re.sub(r'[^A-Za-z0-9._-]', '_', run.label)}.png")


def fig_expert_matrix(runs, ctx, key, name, what, cbar_label, diverging):
    """One panel per run of a recorded per-step, per-expert quantity (record.bias_trajectory,
    record.placement_history): steps across, experts up."""
    have = [r for r in runs if r.per_step.get(key) is not None and r.per_step[key].size]
    if not have:
        note(f"{name} skipped: no input has per_step/{key} (set record.{'bias_trajectory' if key == 'bias' else 'placement_history'})")
        return
    if all(not np.any(r.per_step[key] - (0 if diverging else 1)) for r in have):
        note(f"{name} skipped: per_step/{key} is {'0' if diverging else '1'} throughout for every strategy")
        return
    top = max(float(np.max(np.abs(r.per_step[key]))) for r in have) or 1.0
    if diverging:
        norm, cmap = colors.Normalize(vmin=-top, vmax=top), plt.get_cmap("RdBu_r")
    else:
        norm = colors.BoundaryNorm(np.arange(0.5, top + 1.5), plt.get_cmap("viridis").N)
        cmap = plt.get_cmap("viridis")
    fig, axes = new_figure(ctx, what, nrows=len(have), size=(9.0, 1.3 + 2.6 * len(have)), sharex=True)
    for ax, run in zip(axes[:, 0], have):
        q = run.per_step[key]
        steps = run.steps() if len(run.steps()) == q.shape[0] else np.arange(q.shape[0], dtype=float)
        dx = step_spacing(steps)
        im = ax.imshow(q.T, aspect="auto", origin="lower", interpolation="nearest", cmap=cmap, norm=norm,
                       extent=(steps[0] - dx / 2, steps[-1] + dx / 2, -0.5, q.shape[1] - 0.5))
        ax.set_title(run.label, loc="left")
        ax.set_ylabel("expert index")
        ax.grid(False)
        step_axis(ax, ctx)
        if ax is not axes[-1, 0]:
            ax.set_xlabel("")
    cbar = fig.colorbar(im, ax=list(axes[:, 0]), pad=0.02)
    if not diverging:
        cbar.set_ticks(range(1, int(top) + 1))
    cbar.set_label(cbar_label)
    save(fig, ctx, name)


def fig_bias_trajectory(runs, ctx):
    fig_expert_matrix(runs, ctx, "bias", "bias_trajectory.png", "each expert's bias per step",
                      "bias (red: raised, as for an underloaded expert)", diverging=True)


def fig_placement_history(runs, ctx):
    fig_expert_matrix(runs, ctx, "replicas", "placement_history.png", "EPLB replicas per expert per step",
                      "replicas of the expert", diverging=False)


def final_totals(run):
    """(routed per expert, processed per expert or None, per device or None) over the run."""
    def total(final_key, per_step_key):
        if final_key in run.final and run.final[final_key].size:
            return run.final[final_key]
        rows = run.per_step.get(per_step_key)
        return rows.sum(axis=0) if rows is not None and rows.size else None
    return (total("expert_load_total", "expert_load"), total("expert_processed_total", "expert_processed"),
            total("device_load_total", "device_load"))


def bar_panel(ax, values, colour, behind=None):
    """Bars of values / mean(behind or values) with a dashed line at the mean. `behind` (same order)
    is drawn lighter behind the bars: routed load behind processed load, so the gap is what was dropped."""
    ref = behind if behind is not None else values
    mean = float(np.mean(ref)) if ref.size else 0.0
    norm = mean if mean > 0 else 1.0
    x = np.arange(values.size)
    if behind is not None:
        ax.bar(x, behind / norm, width=0.85, color=colour, alpha=0.3, lw=0)
    ax.bar(x, values / norm, width=0.85, color=colour, lw=0)
    ax.axhline(1.0, color="0.2", ls="--", lw=1.0)
    ax.set_xlim(-0.7, values.size - 0.3)
    ax.grid(axis="x", visible=False)
    return mean


def fig_final_loads(runs, ctx):
    totals = [(r, *final_totals(r)) for r in runs]
    totals = [t for t in totals if t[1] is not None]
    if not totals:
        note("final_loads.png skipped: no input has final/expert_load_total or per_step/expert_load")
        return
    with_devices = any(t[3] is not None for t in totals)
    fig, axes = new_figure(ctx, "load over the whole run, per expert and per device", nrows=len(totals),
                           ncols=2 if with_devices else 1,
                           size=(10.5 if with_devices else 9.0, 1.3 + 2.1 * len(totals)), sharey="col",
                           gridspec_kw={"width_ratios": [3, 1]} if with_devices else None)
    any_drops = nodes_marked = False
    for row, (run, routed, processed, devices) in enumerate(totals):
        colour, last = ctx.colours[run.label], row == len(totals) - 1
        order = np.argsort(-routed, kind="stable")
        drops = processed is not None and processed.shape == routed.shape and bool(np.any(processed != routed))
        any_drops |= drops
        ax = axes[row, 0]
        if drops:
            mean = bar_panel(ax, processed[order], colour, behind=routed[order])
        else:
            mean = bar_panel(ax, routed[order], colour)
        kept = processed if processed is not None and processed.shape == routed.shape else routed
        dead = int(np.sum(kept < 0.01 * mean))
        peak = routed.max() / mean if mean > 0 else 0.0
        ax.set_title(f"{run.label}: max/mean {peak:.2f}, {dead} expert{'' if dead == 1 else 's'} "
                     "below 1% of mean", loc="left")
        ax.set_ylabel("load / mean")
        ax.set_xlabel("experts, sorted by routed load" if last else "")
        if not with_devices:
            continue
        dax = axes[row, 1]
        if devices is None or not devices.size:
            dax.set_axis_off()
            continue
        bar_panel(dax, devices, colour)
        per_node = section(run.scenario, "cluster").get("devices_per_node")
        if isinstance(per_node, int) and 0 < per_node < devices.size:
            for b in range(per_node, devices.size, per_node):
                dax.axvline(b - 0.5, color="0.4", lw=0.9, ls=":")
            nodes_marked = True
        dax.set_title("devices (processed)", loc="left")
        dax.set_xlabel("device index" if last else "")
        dax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True, nbins=8))
    handles = [Line2D([], [], color="0.2", ls="--", label="mean load")]
    if nodes_marked:
        handles.append(Line2D([], [], color="0.4", ls=":", lw=0.9, label="node boundary"))
    if any_drops:
        handles += [Patch(color="0.35", label="processed"),
                    Patch(color="0.35", alpha=0.3, label="routed, dropped part")]
    legend_right(axes[0, -1], handles)
    save(fig, ctx, "final_loads.png")


# --------------------------------------------------------------------------- sweep figures


def sweep_records(index_path, sweep):
    """[(values, strategy, summary)] for every result file of the sweep that exists."""
    records, missing = [], []
    for values, results in sweep.runs:
        for name, path in results:
            if not os.path.exists(path):
                missing.append(path)
                continue
            run = load_result(path)
            records.append((values, name or run.strategy, run.summary))
    if not records:
        raise InputError(f"{index_path}: none of the result files it lists exists (first: {missing[0]})")
    if missing:
        note(f"{len(missing)} result file(s) listed in {index_path} are missing (e.g. other shards); "
             f"first: {missing[0]}")
    return records


def choose_x(index_path, params, requested):
    if not params:
        raise InputError(f"{index_path}: /vary: no varied parameter found")
    if requested is None:
        return params[0]
    matches = [p for p in params if p == requested] or [p for p in params if p.endswith("/" + requested.lstrip("/"))]
    if len(matches) != 1:
        raise InputError(f"{index_path}: --x {requested}: expected one of {', '.join(params)}")
    return matches[0]


def value_text(v):
    return f"{v:g}" if _is_number(v) else (v if isinstance(v, str) else json.dumps(v))


def param_text(pointer):
    return pointer.rstrip("/").rsplit("/", 1)[-1]


def x_positions(values):
    """Map x values to plot positions: numbers as themselves, anything else as categories."""
    keys = {json.dumps(v, sort_keys=True): v for v in values}
    if all(_is_number(v) for v in keys.values()):
        return {k: float(v) for k, v in keys.items()}, None
    ordered = sorted(keys, key=lambda k: value_text(keys[k]))
    return {k: float(i) for i, k in enumerate(ordered)}, [value_text(keys[k]) for k in ordered]


# t_{0.975, df} for df = 1..30 (any statistics table); beyond, the Cornish-Fisher expansion
# around the normal quantile (error < 1e-4 for df > 30). Same numbers as `moesim compare`.
T975 = [12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010, 2.1788,
        2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739, 2.0687, 2.0639,
        2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423]


def t975(df):
    if df <= len(T975):
        return T975[df - 1]
    z = 1.959964
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)


def mean_ci(values):
    """(mean, 95% half-width by Student t; 0 for one value)."""
    a = np.asarray(values, dtype=float)
    if a.size < 2:
        return float(a.mean()), 0.0
    return float(a.mean()), t975(a.size - 1) * float(a.std(ddof=1)) / math.sqrt(a.size)


# Metrics that are rates or fractions: percent axes from zero.
RATE_METRICS = {"drop_rate", "token_drop_rate", "sequences_without_drops", "idle_fraction", "top10_share"}
# Metrics whose axis starts at zero (rates, counts, imbalances that are ≥ 0).
ZERO_BASED = RATE_METRICS | {"rank_imbalance", "maxvio_batch", "maxvio_seq", "maxvio_global", "dead_experts",
                             "cv", "step_time_mean", "comm_bytes_intra", "comm_bytes_inter", "protected_drops",
                             *plot_serve.METRIC_LABELS}


def metric_labels(metric):
    """(title, axis label, as percent) for a summary metric."""
    for key, what, ylabel, percent in SWEEP_METRICS:
        if key == metric:
            return what, ylabel, percent
    if metric in plot_serve.METRIC_LABELS:
        return (*plot_serve.METRIC_LABELS[metric], False)
    return metric, metric, metric in RATE_METRICS


def fig_sweep_metric(records, ctx, x, groups, metric):
    what, ylabel, percent = metric_labels(metric)
    rows = [(v, s, summ[metric]) for v, s, summ in records if metric in summ and x in v]
    if not rows:
        note(f"sweep_{metric}.png skipped: no result has summary/{metric}")
        return
    strategies = list(dict.fromkeys(s for _, s, _ in rows))
    pos, categories = x_positions([v[x] for v, _, _ in rows])

    def group_key(v):
        return ", ".join(f"{param_text(g)}={value_text(v.get(g))}" for g in groups)

    def group_order(v):  # numbers in numeric order, before anything else
        return [(0, x, "") if _is_number(x) else (1, 0, value_text(x)) for x in (v.get(g) for g in groups)]

    keys = list(dict.fromkeys(group_key(v) for v, _, _ in sorted(rows, key=lambda r: group_order(r[0]))))
    panels = strategies if groups else [None]
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = new_figure(ctx, f"{what} vs {param_text(x)}", nrows=nrows, ncols=ncols,
                           size=(3.2 + 3.6 * ncols, 1.4 + 3.0 * nrows), sharey=True)
    lines = strategies if not groups else keys
    palette = ctx.colours if not groups else dict(zip(keys, plt.get_cmap("viridis")(np.linspace(0, 0.9, len(keys)))))
    seed_counts = set()
    for ax, panel in zip(axes.flat, panels):
        for line in lines:
            samples = {}  # x position -> values over seeds
            for v, s, y in rows:
                if s == line if not groups else s == panel and group_key(v) == line:
                    samples.setdefault(pos[json.dumps(v[x], sort_keys=True)], []).append(y)
            if not samples:
                continue
            xs = sorted(samples)
            stats = [mean_ci(samples[p]) for p in xs]
            seed_counts.update(len(samples[p]) for p in xs)
            mean = np.array([m for m, _ in stats])
            half = np.array([h for _, h in stats])
            ax.plot(xs, mean, marker="o", ms=5, color=palette[line])
            if np.any(half > 0):
                ax.fill_between(xs, mean - half, mean + half, color=palette[line], alpha=0.18, lw=0)
        if panel is not None:
            ax.set_title(f"strategy {panel}", loc="left")
        ax.set_xlabel(f"{param_text(x)}  ({x})")
        if categories:
            ax.set_xticks(range(len(categories)), categories)
        elif min(pos.values()) > 0 and max(pos.values()) / min(pos.values()) >= 50:
            ax.set_xscale("log")
        if percent:
            ax.yaxis.set_major_formatter(ticker.PercentFormatter(1.0, decimals=None))
        if metric in ZERO_BASED:
            ax.set_ylim(bottom=0)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    for ax in axes.flat[len(panels):]:
        ax.set_axis_off()
    handles = [Line2D([], [], color=palette[l], marker="o", lw=1.8, label=l) for l in lines]
    title = "strategy" if not groups else "also varied"
    if max(seed_counts) > 1:
        n = f"{min(seed_counts)}–{max(seed_counts)}" if len(seed_counts) > 1 else str(max(seed_counts))
        handles.append(Patch(color="0.6", alpha=0.4, label=f"95% interval over {n} seeds"))
    legend_right(axes[0, -1], handles, title=title)
    save(fig, ctx, f"sweep_{metric}.png")


def plot_sweep(index_path, x_request, outdir, smooth, metrics=None):
    sweep = read_sweep_index(index_path)
    records = sweep_records(index_path, sweep)
    # A varied /seed is averaged over (mean and band), never a line or a panel of its own.
    params = [p for p in sweep.params if p != "/seed"] or sweep.params
    x = choose_x(index_path, params, x_request)
    groups = [p for p in params if p != x]
    ctx = make_ctx(outdir or os.path.join(os.path.dirname(os.path.abspath(index_path)), "plots"), f"{sweep.scenario} sweep",
                   f"{len(sweep.runs)} configurations, varied: {', '.join(map(param_text, sweep.params))}", [], smooth)
    ctx.colours = strategy_colours(list(dict.fromkeys(s for _, s, _ in records)))
    serve = all(plot_serve.is_serve_summary(summary) for _, _, summary in records)
    for metric in metrics or (plot_serve.SWEEP_METRICS if serve else [m for m, _, _, _ in SWEEP_METRICS]):
        fig_sweep_metric(records, ctx, x, groups, metric)
    if serve:
        plot_serve.fig_throughput_latency(records, ctx, sweep.params)
    return ctx.written


# --------------------------------------------------------------------------- main


def make_ctx(outdir, title, facts, labels, smooth):
    try:
        os.makedirs(outdir, exist_ok=True)
    except OSError as e:
        raise InputError(f"{outdir}: cannot create the output folder ({e.strerror})") from None
    if not os.access(outdir, os.W_OK):
        raise InputError(f"{outdir}: output folder is not writable")
    return Ctx(outdir=outdir, title=title, facts=facts, colours=strategy_colours(labels), smooth=smooth)


def fig_layers(runs, ctx):
    """Many layers (moesim.result/2): per strategy, each layer's final expert loads over that layer's
    mean (layers × experts), and each layer's expert and device max/mean side by side."""
    have = [r for r in runs if r.layer_loads is not None and r.layer_loads.shape[0] > 1]
    if not have:
        return  # one layer: the other figures say it all
    cmap = plt.get_cmap("RdBu_r").copy()
    cmap.set_bad("0.8")
    for run in have:
        loads = run.layer_loads
        ratio = load_ratio(loads)
        top = float(np.nanmax(ratio)) if np.any(np.isfinite(ratio)) else 2.0
        lim = 2.0 ** min(8, max(1, math.ceil(math.log2(max(top, 1.0 + 1e-9)))))
        fig, axes = new_figure(ctx, f"final expert load / layer mean: {run.label}",
                               size=(9.0, max(3.0, min(9.0, 0.12 * loads.shape[0] + 1.8))))
        ax = axes[0, 0]
        im = ax.imshow(np.maximum(ratio, 1 / lim), aspect="auto", origin="lower", interpolation="nearest",
                       cmap=cmap, norm=colors.LogNorm(vmin=1 / lim, vmax=lim))
        ax.set_xlabel("expert index")
        ax.set_ylabel("MoE layer")
        ticks = np.linspace(0, loads.shape[0] - 1, min(loads.shape[0], 8)).round().astype(int)
        ax.set_yticks(ticks)
        ax.set_yticklabels([str(run.layer_ids[i]) for i in ticks])
        ax.grid(False)
        cbar = fig.colorbar(im, ax=ax, extend="min", pad=0.02)
        cbar.ax.yaxis.set_major_formatter(ticker.FuncFormatter(pow2_label))
        cbar.set_label("load / layer mean  (white = balanced)")
        save(fig, ctx, f"layers_heatmap_{re.sub(r'[^A-Za-z0-9._-]', '_', run.label)}.png")
    fig, axes = new_figure(ctx, "per-layer imbalance", nrows=2, size=(9.0, 6.0), sharex=True)
    for ax, key, what in ((axes[0, 0], "max_over_mean", "expert max/mean\n(last record.window steps)"),
                          (axes[1, 0], "rank_imbalance", "device max/mean − 1")):
        width = 0.8 / len(have)
        for i, run in enumerate(have):
            v = run.by_layer.get(key)
            if v is None:
                continue
            x = np.arange(len(v)) + (i - (len(have) - 1) / 2) * width
            ax.bar(x, v, width=width, color=ctx.colours[run.label], label=run.label)
        ax.set_ylabel(what)
        ax.set_ylim(bottom=0)
    ids = have[0].layer_ids
    ticks = np.linspace(0, len(ids) - 1, min(len(ids), 12)).round().astype(int)
    axes[1, 0].set_xticks(ticks)
    axes[1, 0].set_xticklabels([str(ids[i]) for i in ticks])
    axes[1, 0].set_xlabel("MoE layer")
    legend_right(axes[0, 0], strategy_handles(ctx, [r.label for r in have]))
    save(fig, ctx, "layers_imbalance.png")


FIGURES = [fig_layers, fig_maxvio, fig_entropy, fig_heatmaps, fig_final_loads, fig_drops, fig_quality, fig_timing,
           fig_rank_imbalance, fig_bias, fig_bias_trajectory, fig_placement_history]


def plot_results(paths, outdir, smooth):
    runs = [load_result(p) for p in paths]
    label_runs(runs)
    scenarios = list(dict.fromkeys(r.scenario_name for r in runs))
    if len(scenarios) > 1:
        note(f"results come from {len(scenarios)} scenarios: {', '.join(scenarios)}")
    ctx = make_ctx(outdir or os.path.join(os.path.dirname(os.path.abspath(paths[0])), "plots"), " + ".join(scenarios),
                   scenario_facts(runs) if len(scenarios) == 1 else "", [r.label for r in runs], smooth)
    if all(r.scenario.get("mode") == "inference" for r in runs):
        ctx.step_label = "serving step"
    serve = [r for r in runs if plot_serve.is_serve(r)]
    stepped = [r for r in runs if not plot_serve.is_serve(r)]
    if serve:
        note(f"{', '.join(r.label for r in serve)}: serving results record iterations and requests, not steps; "
             "the step figures (maxvio, entropy, heatmaps, final loads, drops, quality, timing, rank imbalance, "
             "bias, layers) are skipped for them")
        for figure in plot_serve.FIGURES:
            figure(serve, ctx)
    for figure in FIGURES if stepped else []:
        figure(stepped, ctx)
    return ctx.written


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="plot.py",
        description="Plot moesim result files (moesim.result/1) or a sweep index (moesim.sweep/1) as PNGs. "
                    "Figures whose data is absent are skipped with a note; the written files are printed.",
        epilog="examples:\n  plot.py results/collapse/*.json -o plots/collapse\n"
               "  plot.py --sweep results/switch/sweep.json --x cf",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="*", metavar="RESULT.json",
                   help="result files written by `moesim run`, one per strategy (normally of one scenario)")
    p.add_argument("--sweep", metavar="INDEX.json",
                   help="plot summary metrics (drop_rate, quality_loss, maxvio_global; for serving results "
                        "throughput, goodput, ttft_p99, tpot_p99 and the throughput-latency curve of a sweep over "
                        "/serve/arrivals/rate) against the swept parameter(s) of the index file written by "
                        "`moesim sweep`")
    p.add_argument("--x", metavar="PATH",
                   help="with --sweep: the varied JSON pointer for the x axis (or its unique ending, e.g. cf); "
                        "default: the first varied one. Any other varied parameter gets one line per value")
    p.add_argument("--metrics", metavar="A,B",
                   help="with --sweep: comma-separated summary metrics to plot, one figure each "
                        "(default: drop_rate,quality_loss,maxvio_global; see `moesim list`)")
    p.add_argument("-o", "--outdir", metavar="OUTDIR",
                   help="folder for the PNGs (created if needed); default: a plots/ folder beside the first input")
    p.add_argument("--layer", type=int, metavar="N",
                   help="with result files of many layers: per-step and final figures show MoE layer N (its id, "
                        "as in the result's layer_ids) instead of all layers summed")
    p.add_argument("--smooth", type=int, metavar="W",
                   help="moving-average window in steps for per-step curves (in iterations for serving "
                        "results), drawn thick over the faint raw curve; 0 or 1 draws raw curves only; default: "
                        "about a thirtieth of the run (off below 60 recorded steps)")
    a = p.parse_args(argv)
    if a.sweep and a.results:
        p.error("give result files or --sweep INDEX.json, not both")
    if not a.sweep and not a.results:
        p.error("nothing to plot: give result files or --sweep INDEX.json")
    if a.x and not a.sweep:
        p.error("--x only applies with --sweep")
    if a.metrics is not None and not a.sweep:
        p.error("--metrics only applies with --sweep")
    if a.metrics is not None:
        a.metrics = [m for m in a.metrics.split(",") if m]
        if not a.metrics:
            p.error("--metrics: expected metric names, e.g. drop_rate,quality_loss")
    if a.smooth is not None and a.smooth < 0:
        p.error("--smooth: expected a window of 0 or more steps")
    return a


def main(argv=None):
    global SELECTED_LAYER
    a = parse_args(sys.argv[1:] if argv is None else argv)
    SELECTED_LAYER = a.layer
    plt.rcParams.update(STYLE)
    try:
        if a.sweep:
            written = plot_sweep(a.sweep, a.x, a.outdir, a.smooth, a.metrics)
        else:
            written = plot_results(a.results, a.outdir, a.smooth)
    except InputError as e:
        print(f"plot.py: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"plot.py: error: {e.filename or a.outdir}: cannot write ({e.strerror})", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    if not written:
        note("no figure written: the inputs have none of the plotted series")
    return 0


if __name__ == "__main__":
    sys.exit(main())
