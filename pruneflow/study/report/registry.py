"""A report's pick in MLflow's Model Registry."""

from __future__ import annotations

from pruneflow.study.report import columns as col
from pruneflow.study.report.selection import ReportError
from pruneflow.tracking.runs import store_client


def register(uri: str, experiment: str, row, name: str) -> str:
    """Register the LoggedModel of ``row`` (a runs.csv row) in the Model Registry as ``name``;
    returns the version.

    The model is the one its run logged for the row's variant (its param ``variant``): that
    run's configuration (sparsity, channels, clusters) is the row's, whatever the name it was
    logged under (``digits-cnn-s90-cl16-tflite_int8`` for a clustered run)."""
    client = store_client(uri)
    exp = client.get_experiment_by_name(experiment)
    found = [
        m
        for m in client.search_logged_models(
            experiment_ids=[exp.experiment_id],
            filter_string=f"source_run_id = '{row[col.RUN_ID]}'",
        )
        if m.params.get("variant") == row[col.VARIANT] and "READY" in str(m.status)
    ]
    if not found:
        raise ReportError(
            f"run {row[col.RUN_ID]} has no logged model of {row[col.VARIANT]} to register (it was "
            "logged before pruneflow logged each variant as a model?)"
        )
    model = max(found, key=lambda m: m.creation_timestamp)  # a run's variant: once
    try:
        client.get_registered_model(name)
    except Exception:  # noqa: BLE001 - not registered yet
        client.create_registered_model(name)
    version = client.create_model_version(
        name, source=f"models:/{model.model_id}", run_id=row[col.RUN_ID], model_id=model.model_id
    )
    return str(version.version)
