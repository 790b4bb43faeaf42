"""Latencies of different jobs side by side, and what a reader can trust of them.

A sweep's jobs time their models minutes apart, on a device whose speed drifts (heat, clocks,
other work), so a ratio of two jobs' p50s moves with the device as much as with the models
(issue #29: one channel-pruned MobileNetV2 read 0.39 and then 0.59 of dense from per-job p50s,
0.43 [0.37, 0.49] from interleaved rounds). Wherever pruneflow sets such latencies side by side
(the sweep's summary, the report's tables and plots) it says so in the one line made here,
naming the command that gives interleaved ratios (:mod:`pruneflow.study.compare`), or where a
compare of the sweep exists, pointing to its numbers. Light: no pandas, no MLflow import.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from pruneflow import results
from pruneflow.tracking.config import TrackingConfig
from pruneflow.tracking.store import without_password

DEFAULT_EXPERIMENT = TrackingConfig.experiment  # `pruneflow compare --experiment`'s default too
# What a reader must know of latencies of different jobs side by side
APART = "p50s of separate jobs, timed apart, not interleaved (their ratios drift with the device)"


def compare_command(uri: str, experiment: str, parent_id: str | None) -> str:
    """The ``pruneflow compare`` command that re-times the sweep ``parent_id``'s runs
    interleaved, as typed anywhere (the store named); ``PARENT_RUN_ID`` where the runs are not
    one sweep's (``pruneflow report --all`` or ``--filter``)."""
    command = f"pruneflow compare --tracking-uri {without_password(uri)}"
    if experiment != DEFAULT_EXPERIMENT:
        command += f" --experiment {experiment}"
    return f"{command} --sweep {parent_id or 'PARENT_RUN_ID'}"


def note(command: str, compared: str | None = None) -> str:
    """The one line beside latencies of different jobs: :data:`APART`, then where the
    interleaved ratios are (``compared``: e.g. a report section, the compare at the end of
    the sweep), or the ``command`` that gives them."""
    if compared:
        return f"{APART}: interleaved ratios in {compared}"
    return f"{APART}: interleaved ratios with `{command}`"


def compare_table(uri: str, parent_id: str | None):
    """The compare.csv of the sweep ``parent_id`` (its parent run's ``report/``, where
    ``pruneflow compare`` and the sweep-end compare log it) as a DataFrame; None where no
    compare of it was logged (or no sweep)."""
    if not parent_id:
        return None
    import pandas as pd

    from pruneflow.tracking.runs import store_client

    client = store_client(uri)
    try:
        logged = {a.path for a in client.list_artifacts(parent_id, results.REPORT_DIR)}
    except Exception:  # noqa: BLE001 - a parent whose artifacts cannot be listed: no compare
        return None
    name = f"{results.REPORT_DIR}/{results.COMPARE_CSV}"
    if name not in logged:
        return None
    with tempfile.TemporaryDirectory(prefix="pruneflow-report.") as tmp:
        return pd.read_csv(Path(client.download_artifacts(parent_id, name, tmp)))
