"""The ``tracking`` and ``paths`` sections' schemas: where runs, files and the baseline cache
go. Neither is part of a job's identity (its job key). Light: no MLflow import."""

from __future__ import annotations

from dataclasses import dataclass, field

from pruneflow.errors import require

COMPARE_ROUNDS_KEY = "tracking.compare_rounds"  # the sweep-end compare (TrackingConfig below)
MIN_ROUNDS = 2  # `pruneflow compare`: fewer rounds have no interval
MAX_ROUNDS = 1000  # and more are a mistake (each round times every model once)
ROUNDS_RANGE = f"integers >= {MIN_ROUNDS} and <= {MAX_ROUNDS}"


@dataclass
class TrackingConfig:
    uri: str | None = None  # null: $MLFLOW_TRACKING_URI, else sqlite in `dir`
    dir: str = "mlruns"  # the local store's folder (sqlite mlflow.db and artifacts/)
    experiment: str = "pruneflow"  # the MLflow experiment of the runs
    run_name: str | None = None  # null: <model>-s<sparsity>
    model: str | None = None  # the model's name in runs and reports; null: <dataset>-<backbone>
    # true: a job whose config already has a FINISHED run in the experiment is skipped (a
    # sweep picks up where it stopped); false: it runs again
    resume: bool = True
    # true: trained baselines are also kept in the store, so that machines sharing only the
    # tracking server reuse them (the local cache, paths.cache_dir, is looked in first)
    store_baselines: bool = True
    # > 0: the sweep ends with `pruneflow compare --rounds N` on its runs: every .tflite
    # variant and the dense baseline's re-timed in N interleaved rounds (compare.csv in
    # <sweep dir>/report/; its report is made again to show them); 0: off. Not in the job
    # key (tracking). 3 by default: on the README's sweep it adds 8.5 s (1.30x), and its
    # ratios lie within 1.7% (median) of a 10-round compare's (bench/compare_cost.py,
    # BENCHMARKS.md, issue #29); +debug=tiny turns it off
    compare_rounds: int = 3

    def __post_init__(self) -> None:
        uri, experiment = self.uri, self.experiment
        rounds = self.compare_rounds
        require(
            rounds == 0 or MIN_ROUNDS <= rounds <= MAX_ROUNDS,
            "compare_rounds",
            rounds,
            f"0 (off) or {ROUNDS_RANGE} (a paired interval needs {MIN_ROUNDS} rounds)",
        )
        require(uri is None or bool(uri.strip()), "uri", uri, "null (the local store) or a URI")
        require(bool(str(self.dir).strip()), "dir", self.dir, "a folder for the local store")
        named = bool(experiment and experiment.strip())
        require(named, "experiment", experiment, "a non-empty name")


@dataclass
class PathsConfig:
    # trained baselines and each job's models (for jobs timing the same models: threads,
    # delegates, devices), keyed by what determines them
    cache_dir: str = ".pruneflow_cache"
    output_dir: str | None = None  # null: the Hydra job's folder (the current one outside Hydra)


@dataclass
class SearchConfig:
    """What a search optimizes (``hydra/sweeper=optuna``; :mod:`pruneflow.study.search`): the
    metrics each trial returns to Optuna, in the order of the sweeper's ``direction`` list.
    Ignored under any other sweeper; not in the job key (a job computes the same either way)."""

    objectives: list[str] = field(default_factory=list)  # e.g. [tflite_int8/accuracy, ...]
