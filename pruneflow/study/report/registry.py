"""A report's pick in MLflow's Model Registry."""

from __future__ import annotations

import math

from pruneflow import results
from pruneflow.study import tracking
from pruneflow.study.report.selection import ReportError


def register(uri: str, experiment: str, row, name: str) -> str:
    """Register the LoggedModel of ``row`` (a runs.csv row) in the Model Registry as ``name``;
    returns the version."""
    client = tracking.store_client(uri)
    exp = client.get_experiment_by_name(experiment)
    channels = float(row.get("channels", 0.0))  # runs.csv before channels: none removed
    wanted = results.model_name(
        row["model"],
        row["target_sparsity"],
        row["variant"],
        channels=0.0 if math.isnan(channels) else channels,
    )
    found = [
        m
        for m in client.search_logged_models(
            experiment_ids=[exp.experiment_id],
            filter_string=f"source_run_id = '{row['run_id']}'",
        )
        if m.name == wanted
    ]
    if not found:
        raise ReportError(
            f"run {row['run_id']} has no logged model {wanted!r} to register (it was logged "
            "before pruneflow logged each variant as a model?)"
        )
    model = found[0]
    try:
        client.get_registered_model(name)
    except Exception:  # noqa: BLE001 - not registered yet
        client.create_registered_model(name)
    version = client.create_model_version(
        name, source=f"models:/{model.model_id}", run_id=row["run_id"], model_id=model.model_id
    )
    return str(version.version)
