"""What report.md's sections read (:class:`Report`), made once by
:func:`pruneflow.study.report.markdown.markdown` and handed to each section, and the cells
every per-run table begins with (its configuration: :func:`config_cells`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from pruneflow.study.report import columns as col
from pruneflow.study.report.selection import Dimension, Selection
from pruneflow.study.report.tables import fmt


@dataclass(frozen=True)
class Report:
    """What report.md's sections read, made once (:func:`markdown`)."""

    selection: Selection
    table: object  # runs.csv (:func:`~.selection.rows`)
    best: dict  # :func:`~.tables.best_sparsity`
    tolerance: float
    summary: object  # summary.csv (:func:`~.summary.summary`)
    within: dict | None  # the pick within a budget (:func:`~.budget.pick_within`)
    dims: list[Dimension]  # only the dimensions some run uses have a column beside sparsity
    seeds: list[int]
    interleaved: object = None  # :class:`~.interleaved.Interleaved`: the note beside latencies

    @property
    def note(self) -> str:
        """The line beside a table of different jobs' latencies (:mod:`~.interleaved`)."""
        return self.interleaved.line if self.interleaved is not None else ""

    @property
    def several(self) -> bool:
        """Whether the runs have several seeds: then a seed column labels every per-run row."""
        return len(self.seeds) > 1


# -- cells every per-run table begins with ---------------------------------------------------------
def config_cells(row, dims, several: bool = False) -> str:
    """A row's sparsity cell, a cell per dimension the study varies (``dims``: channels,
    clusters), and its seed cell when the runs have several seeds."""
    cells = [fmt(row[col.TARGET_SPARSITY], "g"), *(fmt(row[d.column], "g") for d in dims)]
    if several:
        cells.append(_seed(row))
    return " | ".join(cells)


def config_head(dims, several: bool) -> str:
    """The heads of :func:`config_cells`, each followed by `` | ``."""
    return "".join(f"{c} | " for c in ("sparsity", *(d.column for d in dims))) + (
        "seed | " if several else ""
    )


def _seed(row) -> str:
    seed = row.get(col.SEED)
    return "–" if seed is None or seed is pd.NA or _isnan(seed) else str(int(seed))


def _isnan(v) -> bool:
    return isinstance(v, float) and math.isnan(v)
