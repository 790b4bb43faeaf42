"""The report's plots: accuracy, latency and size against sparsity per model, and the Pareto
front of accuracy against latency (matplotlib, Agg, PNG), every point a configuration's mean
over its runs (summary.csv; error bars its 95% interval, the baseline a line in its tolerance
band); where runs removed channels (``prune.channels``), latency and MACs against channels too;
where runs clustered weights (``cluster.clusters``), gzip size against clusters; a line per
channels and clusters value in the sparsity plots and the Pareto points labelled by their
configuration (``s0.5/c0.25/cl16``: the dimensions the study varies); where runs measured
energy (``device.energy``), accuracy against energy per image (:mod:`~.plots_energy`); where
runs used several thread counts, latency (and energy) against threads (:mod:`~.plots_threads`).

Each plot is one function, registered under its file's name with :func:`plot` (and the
dimension some run must vary for it to be drawn): adding a plot is a function and its
decorator; :func:`plot_names`, :func:`plots` and report.md's list of plots follow."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pruneflow import results
from pruneflow.study.report import columns as col
from pruneflow.study.report.selection import Dimension
from pruneflow.study.report.summary import summary as summarize
from pruneflow.study.report.tables import (
    DEFAULT_TOLERANCE,
    config_label,
    dimension_parts,
    dimensions,
    matches,
    pareto_front,
)

# one per value of the dimensions (or per sparsity and the other dimension, against one)
STYLES = ("-", "--", ":", "-.")
XLABELS = {
    col.CHANNELS: "target channels removed",
    col.CLUSTERS: "clusters per weight tensor (log2; off: not clustered)",
}
GZIP_KB, SIZE_KB = "gzip_kb", "size_kb"  # the sizes the plots draw, KB


@dataclass(frozen=True)
class Data:
    """What the plots read, made once per report (:func:`plots`)."""

    table: object  # runs.csv (:func:`~.selection.rows`)
    agg: object  # summary.csv, with GZIP_KB and SIZE_KB: every point of the sparsity plots
    tolerance: float
    models: list[str]
    variants: list[str]
    dims: list[Dimension]  # the dimensions beside sparsity some run uses
    columns: list[str]  # their columns
    levels: list[tuple]  # their values: a line per variant and level in the sparsity plots


@dataclass(frozen=True)
class Plot:
    """A registered plot: its PNG's name, the function that draws it, and the dimension some
    run must use for it to be drawn (``needs``: ``channels``, ``clusters``; None: always)."""

    name: str
    draw: Callable[[Data], object]  # -> a matplotlib Figure
    needs: str | None = None
    when: Callable[[object], bool] | None = None  # and what runs.csv must hold (energy ...)
    timed: bool = False  # it sets different jobs' latencies side by side: the note under it


REGISTRY: dict[str, Plot] = {}  # in the order the plots are listed and drawn


def plot(
    name: str,
    needs: str | None = None,
    when: Callable[[object], bool] | None = None,
    timed: bool = False,
):
    """Register the decorated function (``Data`` -> Figure) as the plot ``name``, drawn where a
    run uses the dimension ``needs`` and ``when(runs.csv)`` holds (each where given); ``timed``:
    it sets different jobs' latencies side by side (the note under it)."""

    def register(draw: Callable[[Data], object]):
        REGISTRY[name] = Plot(name, draw, needs, when, timed)
        return draw

    return register


def _register_all() -> None:
    """Register the plots of the modules of their own (each imports this one for its
    decorator, so they are imported here, when the plots are listed, not on loading)."""
    from pruneflow.study.report import plots_energy, plots_threads  # noqa: F401


def plot_names(table) -> tuple[str, ...]:
    """The PNGs :func:`plots` writes for ``table``: :data:`PLOTS`, :data:`CHANNEL_PLOTS` when a
    run removed channels and :data:`CLUSTER_PLOTS` when a run clustered weights, and those
    registered with a condition on the table where it holds (:mod:`~.plots_energy`,
    :mod:`~.plots_threads`)."""
    _register_all()
    used = {d.column for d in dimensions(table)}
    return tuple(
        name
        for name, p in REGISTRY.items()
        if (p.needs is None or p.needs in used) and (p.when is None or p.when(table))
    )


def plots(
    table, out: Path, tolerance: float = DEFAULT_TOLERANCE, summary=None, note: str = ""
) -> list[Path]:
    """The PNGs of :func:`plot_names` into ``out``; the sparsity plots and the Pareto front
    from ``summary`` (:func:`~pruneflow.study.report.summary.summary` of ``table``); ``note``
    under each plot of different jobs' latencies (:mod:`~.interleaved`)."""
    plt = _pyplot()
    data = _data(table, tolerance, summarize(table) if summary is None else summary)
    paths = []
    for name in plot_names(table):
        fig = REGISTRY[name].draw(data)
        if note and REGISTRY[name].timed:
            fig.supxlabel(note, fontsize=7, wrap=True)
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        paths.append(out / name)
    return paths


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _data(table, tolerance: float, agg) -> Data:
    agg = agg.assign(
        **{
            GZIP_KB: agg[col.mean(results.GZIP)] / 1024,
            SIZE_KB: agg[col.mean(results.SIZE)] / 1024,
        }
    )
    dims = dimensions(table)
    columns = [d.column for d in dims]
    return Data(
        table=table,
        agg=agg,
        tolerance=tolerance,
        models=list(dict.fromkeys(table[col.MODEL])),
        variants=list(dict.fromkeys(table[col.VARIANT])),
        dims=dims,
        columns=columns,
        levels=_levels(table, columns),
    )


# -- what the plots share --------------------------------------------------------------------------
def _at(frame, columns: list[str], values: tuple):
    """Which rows of ``frame`` hold ``values`` in ``columns`` (every row for none)."""
    return matches(frame, dict(zip(columns, values, strict=True)))


def _suffix(config: dict, dims) -> str:
    """`` c0.5 cl16``: a line's values of the dimensions ``dims``, in its legend."""
    return "".join(f" {p}" for p in dimension_parts(config, dims))


def _level_suffix(data: Data, level: tuple) -> str:
    return _suffix(dict(zip(data.columns, level, strict=True)), data.dims)


def _levels(frame, columns: list[str]) -> list[tuple]:
    """The distinct values of ``columns`` in ``frame`` (rows without them apart), sorted; one
    empty tuple for no columns."""
    if not columns:
        return [()]
    distinct = frame[columns].dropna().drop_duplicates()
    return sorted(distinct.itertuples(index=False, name=None))


def _errors(s, column: str):
    """Asymmetric error bars of ``<column>_mean`` from its interval (none where it is NaN)."""
    mean = s[col.mean(column)]
    low = (mean - s[col.ci_low(column)]).fillna(0.0).clip(lower=0.0)
    high = (s[col.ci_high(column)] - mean).fillna(0.0).clip(lower=0.0)
    return [low.to_numpy(), high.to_numpy()]


def per_model(data: Data, ylabel: str, draw, x: str = col.TARGET_SPARSITY, frame=None):
    """A figure of a panel per model: ``draw(ax, rows of frame for the model, its model)``
    (``frame``: summary.csv's rows, :attr:`Data.agg`, unless given), against ``x``."""
    plt = _pyplot()
    frame = data.agg if frame is None else frame
    models = data.models
    fig, axes = plt.subplots(
        1, len(models), figsize=(5.5 * len(models), 4), squeeze=False, constrained_layout=True
    )
    for ax, model in zip(axes[0], models, strict=True):
        draw(ax, frame[frame[col.MODEL] == model].sort_values(x, kind="stable"), model)
        ax.set_title(model)
        ax.set_xlabel(XLABELS.get(x, x.replace("_", " ")))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return fig


def _lines(data: Data, g):
    """(variant, label suffix, linestyle, rows) per line of a sparsity plot: one per variant,
    and with channel or clustered runs per (variant, channels, clusters): the dimensions the
    study varies."""
    for v in data.variants:
        for i, level in enumerate(data.levels):
            s = g[(g[col.VARIANT] == v) & _at(g, data.columns, level)]
            if len(s) or not data.dims:
                yield v, _level_suffix(data, level), STYLES[i % len(STYLES)], s


def _error_lines(data: Data, ax, g, measure: str) -> None:
    """A line per variant (and value of the dimensions) of ``<measure>_mean`` against
    sparsity, its 95% interval as error bars; a variant keeps one color across its lines."""
    colors = {}
    for v, suffix, style, s in _lines(data, g):
        container = ax.errorbar(
            s[col.TARGET_SPARSITY],
            s[col.mean(measure)],
            yerr=_errors(s, measure),
            fmt=style,
            marker="o",
            capsize=3,
            label=v + suffix,
            color=colors.get(v),
        )
        colors.setdefault(v, container.lines[0].get_color())


def _against(data: Data, x: str, y: str, frame, where=None):
    """draw(ax, rows, model) of a plot against the dimension ``x``: a line per variant, sparsity
    and value of the other dimensions the study varies, the median of ``y`` over that
    configuration's rows of ``frame`` (thread counts, seeds) at each ``x``, placed at
    ``where(x values)`` (default: the values)."""
    others = [d for d in data.dims if d.column != x]
    keys = [col.TARGET_SPARSITY, *(d.column for d in others)]
    groups = _levels(frame, keys)

    def draw(ax, g, model) -> None:
        colors = {}
        for v in data.variants:
            for i, key in enumerate(groups):
                s = g[(g[col.VARIANT] == v) & _at(g, keys, key)]
                if not len(s):
                    continue
                line = s.groupby(x, sort=True)[y].median()
                name = f"{v} s{key[0]:g}" + _suffix(dict(zip(keys, key, strict=True)), others)
                (drawn,) = ax.plot(
                    line.index if where is None else where(line.index),
                    line.values,
                    STYLES[i % len(STYLES)],
                    marker="o",
                    label=name,
                    color=colors.get(v),
                )
                colors.setdefault(v, drawn.get_color())

    return draw


# -- the plots, in the order report.md lists them ------------------------------------------------
@plot("accuracy_vs_sparsity.png")
def accuracy_vs_sparsity(data: Data):
    """Per model, each variant's accuracy against sparsity (mean, 95% interval), the baseline
    with its tolerance band, and the validation loss of the Keras model (dashed, right axis)."""
    table, tolerance = data.table, data.tolerance

    def draw(ax, g, model) -> None:
        runs = table[table[col.MODEL] == model]
        base = runs.drop_duplicates(col.RUN_ID) if col.RUN_ID in runs else runs
        base = base[col.BASELINE_ACCURACY].dropna()
        if len(base):  # the baseline (its mean over the runs' seeds), and what still holds
            b = float(base.mean())
            ax.axhline(b, color="k", lw=1, label="baseline")
            ax.axhspan(
                b - tolerance / 100,
                b,
                color="k",
                alpha=0.08,
                label=f"tolerance, {tolerance:g} points",
            )
        _error_lines(data, ax, g, results.ACCURACY)
        first = (runs[col.VARIANT] == data.variants[0]) & _at(runs, data.columns, data.levels[0])
        loss = runs[first].groupby(col.TARGET_SPARSITY, sort=True)[col.VAL_LOSS].mean()  # seeds
        twin = ax.twinx()
        twin.plot(loss.index, loss.values, "k--", alpha=0.5, label="val loss")
        twin.set_ylabel(
            "validation loss (keras, dashed)"
            + (f",{_level_suffix(data, data.levels[0])}" if data.dims else "")
        )

    return per_model(data, "validation accuracy (mean, 95% CI)", draw)


@plot("latency_vs_sparsity.png", timed=True)
def latency_vs_sparsity(data: Data):
    """Per model, each variant's p50 latency per image against sparsity (mean, 95% interval),
    on a log axis."""

    def draw(ax, g, model) -> None:
        _error_lines(data, ax, g, col.LATENCY_P50)
        ax.set_yscale("log")

    return per_model(data, "latency p50 per image, ms (mean, 95% CI)", draw)


@plot("size_vs_sparsity.png")
def size_vs_sparsity(data: Data):
    """Per model, each variant's gzip size against sparsity, its raw size faint beside it."""

    def draw(ax, g, model) -> None:
        colors = {}
        for v, suffix, style, s in _lines(data, g):
            (line,) = ax.plot(
                s[col.TARGET_SPARSITY], s[SIZE_KB], style, alpha=0.4, color=colors.get(v)
            )
            colors.setdefault(v, line.get_color())
            ax.plot(
                s[col.TARGET_SPARSITY],
                s[GZIP_KB],
                style,
                marker="o",
                color=line.get_color(),
                label=f"{v}{suffix} (gzip; raw faint)",
            )

    return per_model(data, "size, KB", draw)


@plot("pareto.png", timed=True)
def pareto(data: Data):
    """Accuracy against p50 latency and against gzip size, every configuration's mean a point,
    the Pareto front over every sparsity and value of the dimensions drawn and circled
    (labelled by its configuration where the study varies more than sparsity)."""
    plt, agg, dims = _pyplot(), data.agg, data.dims
    accuracy = results.ACCURACY
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    for ax, cost, label in (
        (axes[0], col.mean(col.LATENCY_P50), "latency p50, ms"),
        (axes[1], GZIP_KB, "gzip size, KB"),
    ):
        # a configuration's mean over its runs (seeds)
        points = agg.assign(**{accuracy: agg[col.mean(accuracy)]}).dropna(subset=[cost, accuracy])
        for v in data.variants:
            s = points[points[col.VARIANT] == v]
            ax.scatter(s[cost], s[accuracy], label=v, s=18)
        # the front over every point: every sparsity and every value of the dimensions
        front = pareto_front(points, cost)
        ax.plot(front[cost], front[accuracy], "k-", alpha=0.6)
        labelled = "/".join(["s", *(d.prefix for d in dims)])
        ax.scatter(
            front[cost],
            front[accuracy],
            facecolors="none",
            edgecolors="k",
            s=70,
            label="Pareto-optimal" + (f" (labelled {labelled})" if dims else ""),
        )
        if dims:
            for _, r in front.iterrows():
                ax.annotate(
                    "s" + config_label(r[col.TARGET_SPARSITY], r, dims),
                    (r[cost], r[accuracy]),
                    textcoords="offset points",
                    xytext=(4, -10),
                    fontsize=6,
                )
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return fig


@plot("latency_vs_channels.png", needs=col.CHANNELS, timed=True)
def latency_vs_channels(data: Data):
    """Per model, p50 latency against channels removed on a log axis, the median over a
    configuration's runs (thread counts, repeats)."""
    latency = _against(data, col.CHANNELS, col.P50, data.table)

    def draw(ax, g, model) -> None:
        latency(ax, g, model)
        ax.set_yscale("log")

    return per_model(data, "latency p50 per image, ms", draw, col.CHANNELS, data.table)


@plot("macs_vs_channels.png", needs=col.CHANNELS)
def macs_vs_channels(data: Data):
    """Per model, MACs per image against channels removed, a line per sparsity (MACs are the
    run's, one per run, and clustering leaves them as they are), the baseline's dotted."""
    sparsities = sorted(data.table[col.TARGET_SPARSITY].dropna().unique())

    def draw(ax, g, model) -> None:
        runs = g.drop_duplicates(col.RUN_ID)
        for i, sp in enumerate(sparsities):
            s = runs[runs[col.TARGET_SPARSITY] == sp]
            if not len(s):
                continue
            y = s.groupby(col.CHANNELS, sort=True)[col.MACS].median() / 1e6
            ax.plot(y.index, y.values, STYLES[i % len(STYLES)], marker="o", label=f"s{sp:g}")
        base = runs[col.BASELINE_MACS].dropna()
        if len(base):
            ax.axhline(float(base.median()) / 1e6, color="k", alpha=0.5, ls=":", label="baseline")

    return per_model(data, "MACs per image, millions", draw, col.CHANNELS, data.table)


@plot("gzip_vs_clusters.png", needs=col.CLUSTERS)
def gzip_vs_clusters(data: Data):
    """Per model, each variant's gzip size against clusters on a log2 axis (the median of a
    configuration's runs), the runs without clustering (``off``) one step left of the fewest
    clusters."""
    table = data.table
    counts = sorted(int(c) for c in table[col.CLUSTERS].unique())
    on = [c for c in counts if c > 0]
    off = on[0] / 2  # where 0 (not clustered) sits on the log2 axis

    def place(xs):
        return [c if c > 0 else off for c in xs]

    frame = table.assign(**{GZIP_KB: table[results.GZIP] / 1024})
    gzip = _against(data, col.CLUSTERS, GZIP_KB, frame, place)

    def draw(ax, g, model) -> None:
        gzip(ax, g, model)
        ax.set_xscale("log", base=2)
        ticks = place(counts)
        ax.set_xticks(ticks, ["off" if c == 0 else str(c) for c in counts])
        ax.minorticks_off()

    return per_model(data, "gzip size, KB (median of runs)", draw, col.CLUSTERS, frame)


PLOTS = tuple(name for name, p in REGISTRY.items() if p.needs is None and p.when is None)
CHANNEL_PLOTS = tuple(name for name, p in REGISTRY.items() if p.needs == col.CHANNELS)
CLUSTER_PLOTS = tuple(name for name, p in REGISTRY.items() if p.needs == col.CLUSTERS)
