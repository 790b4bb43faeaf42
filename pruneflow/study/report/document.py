"""What report.md's sections read (:class:`Report`), made once by
:func:`pruneflow.study.report.markdown.markdown` and handed to each section."""

from __future__ import annotations

from dataclasses import dataclass

from pruneflow.study.report.selection import Dimension, Selection


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
