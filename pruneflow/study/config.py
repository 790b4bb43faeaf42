"""The ``tracking`` and ``paths`` sections' schemas: where runs, files and the baseline cache
go. Neither is part of a job's identity (its job key). Light: no MLflow import."""

from __future__ import annotations

from dataclasses import dataclass

from pruneflow.errors import require


@dataclass
class TrackingConfig:
    uri: str | None = None  # null: $MLFLOW_TRACKING_URI, else sqlite in `dir`
    dir: str = "mlruns"
    experiment: str = "pruneflow"
    run_name: str | None = None  # null: <model>-s<sparsity>
    model: str | None = None  # the model's name in runs and reports; null: <dataset>-<backbone>
    # true: a job whose config already has a FINISHED run in the experiment is skipped (a
    # sweep picks up where it stopped); false: it runs again
    resume: bool = True
    # true: trained baselines are also kept in the store, so that machines sharing only the
    # tracking server reuse them (the local cache, paths.cache_dir, is looked in first)
    store_baselines: bool = True

    def __post_init__(self) -> None:
        uri, experiment = self.uri, self.experiment
        require(uri is None or bool(uri.strip()), "uri", uri, "null (the local store) or a URI")
        require(bool(str(self.dir).strip()), "dir", self.dir, "a folder for the local store")
        named = bool(experiment and experiment.strip())
        require(named, "experiment", experiment, "a non-empty name")


@dataclass
class PathsConfig:
    cache_dir: str = ".pruneflow_cache"  # trained baselines, keyed by what determines them
    output_dir: str | None = None  # null: the Hydra job's folder (the current one outside Hydra)
