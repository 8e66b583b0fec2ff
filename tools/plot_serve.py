"""Serving figures for plot.py: results of `mode: serve` (MODEL.md §10), which record iterations and
requests instead of training steps.

    latency_cdf.png         TTFT, TPOT and end-to-end latency CDFs over requests, a line per strategy
    serve_over_time.png     iteration time, waiting and running requests, rank imbalance over simulated
                            time; a disaggregated run's decode instance dashed
    throughput_latency.png  (sweep over /serve/arrivals/rate) p99 latencies against output throughput,
                            a point per rate

Imported by plot.py, whose helpers (figures, colours, notes, intervals) it uses.
"""

import numpy as np
from matplotlib.lines import Line2D

import plot as base  # plot.py registers itself under this name when run as a script

# Summary metrics of a serving result: (title, axis label), all ≥ 0 (axes from zero).
METRIC_LABELS = {
    **{f"{key}_{stat}": (f"{name} {stat}", f"{what}, {stat} over requests (s)")
       for key, name, what in (("ttft", "TTFT", "time to first token"),
                               ("tpot", "TPOT", "time per output token after the first"),
                               ("e2e", "end-to-end", "request latency, arrival to last token"))
       for stat in ("mean", "p50", "p90", "p99")},
    "throughput": ("throughput", "output tokens per second"),
    "goodput": ("goodput", "requests per second meeting the TTFT and TPOT targets"),
    "requests_completed": ("requests completed", "requests completed"),
    "iteration_time_mean": ("mean iteration time", "mean iteration time (s)"),
    "queue_mean": ("mean queue", "waiting requests, mean"),
    "migrations": ("migrations", "expert slots moved by online EPLB"),
    "migration_time": ("migration time", "time iterations were extended by weight migration (s)"),
}
# What `plot.py --sweep` draws for a sweep of serving results when --metrics is not given.
SWEEP_METRICS = ["throughput", "goodput", "ttft_p99", "tpot_p99"]
# (requests key, panel title, slo key)
LATENCIES = [("ttft", "time to first token (TTFT)", "ttft"), ("tpot", "time per output token (TPOT)", "tpot"),
             ("e2e", "end-to-end latency", None)]
# (series key, axis label, in seconds)
OVER_TIME = [("iteration_time", "iteration time", True), ("queue", "waiting requests", False),
             ("running", "running requests", False), ("rank_imbalance", "rank imbalance\n(device max/mean − 1)", False)]
INSTANCE_STYLES = [("-", "prefill instance"), ("--", "decode instance")]


def is_serve(run):
    return run.scenario.get("mode") == "serve"


def is_serve_summary(summary):
    """Whether a sweep record's summary is a serving result's (sweep records carry no scenario)."""
    return "ttft_mean" in summary and "throughput" in summary


def read_requests(doc, path):
    """/requests as {name: 1-D array}, every array of one length ({} when absent)."""
    requests = {k: base.to_vector(v, path, f"/requests/{k}") for k, v in base._object(doc, "requests", path).items()}
    lengths = {len(v) for v in requests.values()}
    if len(lengths) > 1:
        raise base.InputError(f"{path}: /requests: arrays have different lengths "
                              f"({', '.join(f'{k} {len(v)}' for k, v in requests.items())})")
    return requests


def serve_facts(scenario):
    """Scenario facts of a serving run for the figure subtitle: arrivals and request count."""
    serve = base.section(scenario, "serve")
    arrivals = base.section(serve, "arrivals")
    parts = []
    if base._is_number(arrivals.get("rate")):  # a hand-edited echo may hold anything
        parts.append(f"{arrivals.get('process', 'poisson')} {arrivals['rate']:g} req/s")
    elif "trace" in arrivals:
        parts.append("arrival trace")
    if "requests" in serve:
        parts.append(f"{serve['requests']} requests")
    elif base._is_number(serve.get("duration")):
        parts.append(f"{serve['duration']:g} s")
    if "prefill" in serve and "decode" in serve:
        parts.append("P/D disaggregated")
    return parts


def time_unit(peak):
    """(scale, unit) for seconds whose largest value is `peak`."""
    return (1e3, "ms") if peak < 1 else (1.0, "s")


def log_if_wide(ax, values, axis="x"):
    """A log axis when the positive values span more than two decades."""
    pos = np.concatenate([v[v > 0] for v in values]) if values else np.array([])
    if pos.size and pos.max() / pos.min() > 100:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
        return True
    return False


def latencies(run, key):
    """A run's per-request values of one latency; TPOT leaves out 1-token outputs (no second token)."""
    v = run.requests.get(key)
    if v is None or not v.size:
        return None
    if key == "tpot":
        output = run.requests.get("output")
        v = v[output > 1] if output is not None else v[v > 0]
    return v


def fig_latency_cdf(runs, ctx):
    panels = [p for p in LATENCIES if any(latencies(r, p[0]) is not None for r in runs)]
    if not panels:
        base.note("latency_cdf.png skipped: no serving result has a requests object (per-request latencies)")
        return
    groups = base.seed_groups(runs, ctx)  # seeds of one configuration: their requests pooled
    fig, axes = base.new_figure(ctx, "request latency (CDF over requests)", ncols=len(panels),
                                size=(3.0 + 3.4 * len(panels), 4.4), sharey=True)
    slo = base.section(base.section(runs[0].scenario, "serve"), "slo")
    drawn = []
    for ax, (key, what, slo_key) in zip(axes[0], panels):
        curves = []
        for label, members in groups:
            samples = [v for v in (latencies(m, key) for m in members) if v is not None]
            if samples and sum(v.size for v in samples):
                curves.append((label, np.sort(np.concatenate(samples))))
        if not curves:
            ax.set_axis_off()
            continue
        scale, unit = time_unit(max(float(v[-1]) for _, v in curves))
        for label, v in curves:
            ax.step(v * scale, np.arange(1, v.size + 1) / v.size, where="post", color=ctx.colours[label])
            drawn += [label] if label not in drawn else []
        log = log_if_wide(ax, [v * scale for _, v in curves])
        target = slo.get(slo_key) if slo_key else None
        if base._is_number(target) and target <= 2 * max(float(v[-1]) for _, v in curves):
            ax.axvline(target * scale, color="0.3", ls="--", lw=1.0)  # far beyond the data it would only squash it
        ax.axhline(0.99, color="0.5", ls=":", lw=0.9)
        ax.set_title(what, loc="left")
        ax.set_xlabel(f"{key.upper() if key != 'e2e' else 'latency'} ({unit}{', log scale' if log else ''})")
        ax.set_ylim(0, 1.01)
    axes[0, 0].set_ylabel("share of requests at or below")
    handles = base.strategy_handles(ctx, drawn)
    handles.append(Line2D([], [], color="0.5", ls=":", lw=0.9, label="99th percentile"))
    targets = [f"{k.upper()} {slo[k]:g} s" for _, _, k in panels if k and base._is_number(slo.get(k))]
    if targets:
        handles.append(Line2D([], [], color="0.3", ls="--", lw=1.0, label=f"SLO target\n({', '.join(targets)})"))
    base.legend_right(axes[0, -1], handles)
    base.save(fig, ctx, "latency_cdf.png")


def smoothed(ctx, y):
    """The thick curve over a faint raw one: a moving average over iterations (None: draw raw only)."""
    half = ctx.smooth // 2 if ctx.smooth is not None else (round(len(y) / 60) if len(y) >= 60 else 0)
    return base.moving_average(y, half) if half > 0 else None


def fig_over_time(runs, ctx):
    have = [r for r in runs if len(r.series.get("time", ()))]
    panels = [p for p in OVER_TIME if any(len(r.series.get(p[0], ())) == len(r.series["time"]) for r in have)]
    for zero in [p for p in panels if not any(np.any(r.series.get(p[0], ())) for r in have)]:
        base.note(f"serve_over_time.png: series/{zero[0]} is 0 throughout for every strategy; panel left out")
        panels.remove(zero)
    if not panels:
        base.note("serve_over_time.png skipped: no serving result has series/time with iteration_time, queue, "
                  "running or rank_imbalance")
        return
    instances = {int(i) for r in have for i in r.series.get("instance", [0])}
    fig, axes = base.new_figure(ctx, "serving over time (one point per iteration)", nrows=len(panels),
                                size=(10.0, 1.2 + 2.5 * len(panels)), sharex=True)
    drawn = []
    for ax, (key, ylabel, seconds) in zip(axes[:, 0], panels):
        peak = max((float(np.max(r.series[key])) for r in have if len(r.series.get(key, ()))), default=0.0)
        scale, unit = time_unit(peak) if seconds else (1.0, "")
        for run in have:
            t, y = run.series["time"], run.series.get(key)
            if y is None or len(y) != len(t):
                continue
            instance = run.series.get("instance", np.zeros(len(t)))
            colour = ctx.colours[run.label]
            for i, (style, _) in enumerate(INSTANCE_STYLES):
                mask = instance == i
                if not np.any(mask):
                    continue
                thick = smoothed(ctx, y[mask] * scale)
                ax.plot(t[mask], y[mask] * scale, color=colour, ls=style,
                        lw=0.7 if thick is not None else 1.4, alpha=0.35 if thick is not None else 1.0)
                if thick is not None:
                    ax.plot(t[mask], thick, color=colour, ls=style, lw=1.8)
            drawn += [run.label] if run.label not in drawn else []
        ax.set_ylabel(f"{ylabel} ({unit})" if unit else ylabel)
        ax.set_ylim(bottom=0)
    axes[-1, 0].set_xlabel("simulated time (s)")
    handles = base.strategy_handles(ctx, drawn)
    if len(instances) > 1:
        handles += [Line2D([], [], color="0.3", ls=style, label=text) for style, text in INSTANCE_STYLES]
    base.legend_right(axes[0, 0], handles)
    base.save(fig, ctx, "serve_over_time.png")


FIGURES = [fig_latency_cdf, fig_over_time]


def rate_param(params):
    """The swept arrival-rate pointer, or None."""
    return next((p for p in params if p.endswith("/serve/arrivals/rate")), None)


def fig_throughput_latency(records, ctx, params):
    """p99 latencies against throughput, a point per arrival rate (mean over seeds, 95% bars), a line per
    strategy and setting of any other varied parameter: the knee is where the engine saturates."""
    rate = rate_param(params)
    if rate is None:
        base.note("throughput_latency.png skipped: the sweep does not vary /serve/arrivals/rate")
        return
    others = [p for p in params if p not in (rate, "/seed")]
    lines = {}  # (strategy, other values) -> {rate: [summaries]}
    for values, strategy, summary in records:
        if rate in values and "throughput" in summary:
            other = ", ".join(f"{base.param_text(p)}={base.value_text(values.get(p))}" for p in others)
            lines.setdefault((strategy, other), {}).setdefault(values[rate], []).append(summary)
    panels = [m for m in ("ttft_p99", "tpot_p99", "e2e_p99") if any(m in s for _, _, s in records)]
    if not lines or not panels:
        base.note("throughput_latency.png skipped: no result has summary/throughput and a p99 latency")
        return
    fig, axes = base.new_figure(ctx, "throughput vs p99 latency (points: arrival rate, requests/s)",
                                ncols=len(panels), size=(3.0 + 3.6 * len(panels), 4.6))
    settings = list(dict.fromkeys(other for _, other in lines))
    styles = dict(zip(settings, ["-", "--", ":", "-."] * len(settings)))
    seeds = set()
    for ax, metric in zip(axes[0], panels):
        ys_all = []
        for (strategy, other), by_rate in lines.items():
            points = []
            for r in sorted(by_rate, key=lambda v: (not base._is_number(v), v if base._is_number(v) else 0)):
                have = [s for s in by_rate[r] if metric in s]
                if have:
                    seeds.add(len(have))
                    points.append((r, base.mean_ci([s["throughput"] for s in have]),
                                   base.mean_ci([s[metric] for s in have])))
            if not points:
                continue
            x = np.array([m for _, (m, _), _ in points])
            y = np.array([m for _, _, (m, _) in points])
            yerr = np.array([h for _, _, (_, h) in points])
            colour = ctx.colours[strategy]
            ax.errorbar(x, y, yerr=yerr if np.any(yerr > 0) else None, color=colour, ls=styles[other],
                        marker="o", ms=4.5, capsize=2)
            for r, xi, yi in zip((p[0] for p in points), x, y):
                ax.annotate(base.value_text(r), (xi, yi), textcoords="offset points", xytext=(4, 3),
                            fontsize=7, color=colour)
            ys_all.append(y)
        log = log_if_wide(ax, ys_all, axis="y")
        if not log:
            ax.set_ylim(bottom=0)
        ax.set_xlim(left=0)
        ax.set_title(base.metric_labels(metric)[0], loc="left")
        ax.set_xlabel("throughput (output tokens/s)")
        ax.set_ylabel(f"{base.metric_labels(metric)[0]} (s{', log scale' if log else ''})")
    strategies = list(dict.fromkeys(s for s, _ in lines))
    handles = base.strategy_handles(ctx, strategies)
    if len(settings) > 1:
        handles += [Line2D([], [], color="0.3", ls=styles[o], label=o) for o in settings]
    if max(seeds, default=1) > 1:
        handles.append(Line2D([], [], color="0.3", marker="|", ls="", label="95% interval over seeds"))
    base.legend_right(axes[0, -1], handles)
    base.save(fig, ctx, "throughput_latency.png")
