"""The pick within a budget (``pruneflow report --budget``): the most accurate (run, variant)
of a report's runs whose metrics meet every constraint, such as
``tflite_int8/invoke_p50_ms<=2, tflite_int8/gzip_bytes<=60000``.

A constraint is ``METRIC<=NUMBER`` or ``METRIC>=NUMBER`` (``<``, ``>`` too). Its metric is
read the way the runs log it (:mod:`pruneflow.results`):

- ``<variant>/<measure>``, a variant the runs have: that variant's measure, and only that
  variant's candidates can meet it;
- a bare per-variant measure (``invoke_p50_ms``, ``gzip_bytes``, ``accuracy``: some run logs
  ``<variant>/<measure>``): each candidate's own;
- any other name (``macs``, ``sparsity``: :data:`~pruneflow.results.RUN_MEASURES`,
  ``baseline/macs``, ``time/train_s``): the run's, for every variant of it.

A candidate is a run's variant with an accuracy; one without a constraint's metric does not
meet it. Ties: the smaller gzip file, then the run id.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from dataclasses import dataclass

from pruneflow import results
from pruneflow.errors import PruneflowError
from pruneflow.study.report import columns as col
from pruneflow.study.report.selection import ReportError, variants
from pruneflow.study.report.tables import pick_text

OPERATORS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
FORM = (
    "the form is METRIC<=NUMBER or METRIC>=NUMBER, comma-separated "
    '(e.g. "tflite_int8/invoke_p50_ms<=2, tflite_int8/gzip_bytes<=60000")'
)
TIE_GZIP = "_gzip"  # the gzip size ties are broken on, a missing one last
_CONSTRAINT = re.compile(r"(?P<metric>[^<>=]+?)\s*(?P<op><=|>=|<|>)\s*(?P<number>.*)")


class BadBudget(PruneflowError, ValueError):
    """A budget that does not parse, or names a metric no selected run logs (an argument
    error); the message says what to write instead."""


class BudgetError(ReportError):
    """No candidate meets every constraint; the message says which constraints none meets, or
    how many meet each."""


@dataclass(frozen=True)
class Constraint:
    """``metric op bound``: a logged metric's name, ``<=`` or ``>=`` (or ``<``, ``>``), a
    number."""

    metric: str
    op: str
    bound: float

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.bound:.15g}"

    def holds(self, value: float) -> bool:
        """Whether ``value`` meets it (a missing value, NaN, never does)."""
        return not math.isnan(value) and OPERATORS[self.op](value, self.bound)


@dataclass(frozen=True)
class Bound:
    """A constraint as it reads the selected runs: one variant's metric (``variant`` and its
    ``measure``), each candidate's own measure (``measure`` alone), or the run's metric
    (neither)."""

    constraint: Constraint
    variant: str | None = None
    measure: str | None = None

    def value(self, metrics, variant: str) -> float:
        """Its metric for ``variant`` of a run (``metrics``: the run's ``search_runs`` row);
        NaN where that candidate has none (another variant than the bound's, or not logged)."""
        if self.variant is not None and variant != self.variant:
            return math.nan
        name = self.constraint.metric
        if self.variant is None and self.measure is not None:
            name = results.metric(variant, self.measure)
        value = metrics.get(f"metrics.{name}")
        return math.nan if value is None else float(value)

    @property
    def label(self) -> str:
        """How the pick's line names its value: ``invoke_p50_ms`` (the variant is the pick's),
        ``macs``, ``measured sparsity`` (beside the target sparsity the line names)."""
        if self.measure is None and self.constraint.metric == results.SPARSITY:
            return f"measured {results.SPARSITY}"
        return self.measure or self.constraint.metric


def parse_budget(text: str) -> list[Constraint]:
    """``"tflite_int8/invoke_p50_ms<=2, tflite_int8/gzip_bytes<=60000"`` as its constraints
    (spaces anywhere between the parts); :class:`BadBudget` says what does not parse."""
    if not text.strip():
        raise BadBudget(f"no constraint: {FORM}")
    constraints = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            raise BadBudget(f"an empty constraint between commas: {FORM}")
        found = _CONSTRAINT.fullmatch(part)
        if found is None:
            raise BadBudget(f"{part!r} is not a constraint: {FORM}")
        number = found["number"].strip()
        try:
            bound = float(number)
        except ValueError:
            bound = math.nan
        if not math.isfinite(bound):
            raise BadBudget(f"{number!r} in {part!r} is not a number: {FORM}")
        constraints.append(Constraint(found["metric"], found["op"], bound))
    return constraints


def bind(constraints: list[Constraint], runs) -> list[Bound]:
    """What each constraint reads of ``runs`` (``search_runs``: the report's selection; see the
    module's rules); :class:`BadBudget` for a metric no run logs, naming the nearest ones."""
    logged = {
        c[len("metrics.") :] for c in runs if c.startswith("metrics.") and runs[c].notna().any()
    }
    have = variants(runs)
    measures = {n.split("/", 1)[1] for n in logged if n.split("/", 1)[0] in have}
    bounds = []
    for c in constraints:
        if c.metric in measures and c.metric not in results.RUN_MEASURES:
            bounds.append(Bound(c, measure=c.metric))  # some run logs it per variant
            continue
        if c.metric not in logged:
            known = sorted(logged | measures)
            near = difflib.get_close_matches(c.metric, known, 3, 0.6)
            near = near or difflib.get_close_matches(c.metric, known, 3, 0.0)
            raise BadBudget(
                f"no selected run logs a metric {c.metric!r}: the nearest are {', '.join(near)}"
            )
        variant, _, measure = c.metric.partition("/")
        bounds.append(Bound(c, variant, measure) if variant in have and measure else Bound(c))
    return bounds


def pick_within(table, runs, constraints: list[Constraint]) -> dict:
    """The most accurate (run, variant) of ``table`` (:func:`~.selection.rows` of the
    selection whose ``search_runs`` are ``runs``) that meets every constraint (ties: the smaller
    gzip file, then the run id): its row as a dict, with ``budget`` (the constraints as
    written) and ``met`` (``[(label, value)]`` of each constraint's metric there).

    :class:`BadBudget` for a metric no run logs; :class:`BudgetError` when no candidate meets
    every constraint: the constraints none meets on its own, or how many meet each."""
    bounds = bind(constraints, runs)
    by_run = {r[col.RUN_ID]: r for r in runs.to_dict("records")}
    candidates = table[table[results.ACCURACY].notna()]
    at = list(zip(candidates[col.RUN_ID], candidates[col.VARIANT], strict=True))
    values = [[b.value(by_run[r], v) for r, v in at] for b in bounds]
    meets = [[b.constraint.holds(x) for x in xs] for b, xs in zip(bounds, values, strict=True)]
    every = [all(m) for m in zip(*meets, strict=True)] if bounds else [True] * len(at)
    if not any(every):
        raise BudgetError(_nothing(bounds, values, meets, len(candidates)))
    within = candidates[every]
    pick = (
        within.assign(**{TIE_GZIP: within[results.GZIP].fillna(math.inf)})
        .sort_values(
            [results.ACCURACY, TIE_GZIP, col.RUN_ID, col.VARIANT],
            ascending=[False, True, True, True],
        )
        .iloc[0]
        .drop(TIE_GZIP)
    )
    shown = (results.ACCURACY, results.GZIP)  # the line has them already
    met = {
        b.label: b.value(by_run[pick[col.RUN_ID]], pick[col.VARIANT])
        for b in bounds
        if b.label not in shown
    }
    budget = ", ".join(map(str, constraints))
    return {**pick.to_dict(), "budget": budget, "met": list(met.items())}


def _nothing(bounds: list[Bound], values, meets, n: int) -> str:
    """Why none of the ``n`` candidates is within the budget (``values`` and ``meets``: per
    bound, each candidate's value and whether it meets the bound)."""
    alone = []
    for b, xs, ok in zip(bounds, values, meets, strict=True):
        if any(ok):
            continue
        have = [x for x in xs if not math.isnan(x)]
        closest = min if b.constraint.op.startswith("<") else max
        alone.append(
            f"{b.constraint} (the closest: {closest(have):.4g})"
            if have
            else f"{b.constraint} (none of them has {b.constraint.metric})"
        )
    if alone:
        return f"nothing within the budget: no (run, variant) of the {n} meets " + " nor ".join(
            alone
        )
    counts = ", ".join(f"{b.constraint} by {sum(ok)}" for b, ok in zip(bounds, meets, strict=True))
    return (
        f"nothing within the budget: each constraint is met by some (run, variant) of the {n}, "
        f"never all together ({counts})"
    )


def pick_line(pick: dict) -> str:
    """``digits-cnn tflite_int8 of run <id> (sparsity 0.9, accuracy 0.9796, invoke_p50_ms
    0.011, gzip 17.2 KB)``: the pick (:func:`pick_within`) with its constrained values."""
    met = [f"{label} {value:.4g}" for label, value in pick["met"]]
    what = f"{pick[col.MODEL]} {pick[col.VARIANT]} of run {pick[col.RUN_ID]}"
    return f"{what} ({pick_text(pick, met)})"


def within_line(pick: dict) -> str:
    """What ``pruneflow report --budget`` prints: ``within budget (<the constraints>):
    <pick_line>``."""
    return f"within budget ({pick['budget']}): {pick_line(pick)}"
