"""The job: one composed config in, one MLflow run out.

device check -> data -> baseline (cached) -> prune -> cluster -> QAT -> convert -> evaluate
-> benchmark -> record; the models (baseline to evaluate) are cached too, for jobs that differ
only in where and how they are timed (:mod:`pruneflow.models_cache`). Each step is one
function in ``pruneflow/steps/<step>/`` that receives its config section and returns a small
typed result; the step's record (``record.py`` beside it) turns it into the names of
:mod:`pruneflow.results` as soon as it exists, so a run that fails midway is marked FAILED
(KILLED when interrupted) with its partial artifacts, its error and its log.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from pruneflow import __version__, job_record, models_cache, results
from pruneflow.config import Config, check, instantiate, keys_under
from pruneflow.devices.base import open_device
from pruneflow.devices.local import host_runtime
from pruneflow.devices.readiness import float16_note
from pruneflow.identity import baseline_spec
from pruneflow.process import Termination, job_log
from pruneflow.steps import import_libraries
from pruneflow.steps.benchmark.record import for_device_check, for_timing
from pruneflow.steps.cluster.record import for_clustering
from pruneflow.steps.convert.record import for_files
from pruneflow.steps.convert.variants import VARIANTS, fp16_asked
from pruneflow.steps.model.foreign import route
from pruneflow.steps.prune.record import for_pruning
from pruneflow.steps.quantize.record import for_qat
from pruneflow.steps.train.record import for_baseline
from pruneflow.tracking import baselines, claims, provenance
from pruneflow.tracking.context import JobContext
from pruneflow.tracking.runs import (
    end_stale_runs,
    finished_run,
    flatten,
    prepare_store,
    resolve_uri,
    show_command,
    start_run,
    store_client,
)
from pruneflow.tracking.store import check_before_work

log = logging.getLogger(__name__)


def run(
    cfg: DictConfig | Config,
    output_dir: str | Path | None = None,
    job: JobContext | None = None,
) -> dict[str, float]:
    """Run every stage for ``cfg``; returns the metrics logged to MLflow.

    Checks the whole config before anything else (:class:`pruneflow.errors.ConfigError`),
    then that ``tracking.dir`` and ``paths.cache_dir`` are writable folders (ConfigError) and
    that a tracking server answers (:class:`pruneflow.tracking.store.TrackingError`).
    With ``tracking.resume`` (the default), a config that already has a FINISHED run in the
    experiment is not run again: its run's metrics are returned. Otherwise writes models,
    benchmark images, runner results and the job log under ``output_dir`` (default
    ``cfg.paths.output_dir``, else the current folder), the baseline under
    ``cfg.paths.cache_dir``, and one MLflow run to the configured store, nested under the
    sweep's parent run when ``job`` (a sweep's job) says so.

    With ``tracking.resume``, a run of the same config being made by another process (a
    concurrent sweep of the same jobs) is waited for, then skipped as finished or run here
    if it failed (:mod:`pruneflow.tracking.claims`).
    """
    config = check(cfg) if isinstance(cfg, DictConfig) else cfg
    while True:
        try:
            return _run(config, output_dir, job)
        except claims.Behind as behind:  # its run started beside an older one: wait for that
            t = config.tracking
            store_client(resolve_uri(t.uri, t.dir)).delete_run(behind.run_id)


def _run(config: Config, output_dir: str | Path | None, job: JobContext | None):
    t = config.tracking
    uri = resolve_uri(t.uri, t.dir)
    # writable folders, an answering server: one line each, before any work or run
    check_before_work(uri, t.dir, config.paths.cache_dir)
    open_device(config.device).check_timing_lock()  # a lock it could not take later, now
    _check_layer_selection(config)
    out = Path(output_dir or config.paths.output_dir or ".")
    out.mkdir(parents=True, exist_ok=True)
    label = job.label if job else config.run_name
    metrics: dict[str, float] = {}
    tags: dict[str, str] = {}
    started = time.perf_counter()
    with job_log(out) as log_file, Termination() as termination:
        log.info("%s ... (job %s: %s)", label, config.job_key, config.run_name)
        # a new store is made by another process while this one imports TensorFlow
        experiment_id = prepare_store(uri, t.experiment, t.dir, import_libraries)
        if job is None:  # a sweep did this before its first job
            for run_id in end_stale_runs(uri, experiment_id):
                log.warning("run %s was left RUNNING by a process that is gone: KILLED", run_id)
        code = provenance.code_version()
        replaces = None
        if t.resume:
            done = claims.wait_for_others(uri, experiment_id, config.job_key, code, label)
            if done is not None:
                log.info(
                    "%s skipped (finished run %s has this config; tracking.resume=false runs "
                    "it again)",
                    label,
                    done.info.run_id,
                )
                if job is not None:
                    job.note_skipped(uri, t.experiment, config.job_key)
                return dict(done.data.metrics)
            replaces = finished_run(uri, experiment_id, config.job_key)
            if replaces is not None:
                log.info(
                    "%s: finished run %s has this config but was made by other code (this "
                    "is pruneflow %s, code %s): running it again",
                    label,
                    _made_by(replaces),
                    __version__,
                    code,
                )
        tags = {
            **job_record.start_tags(config, host_runtime(), provenance.git_commit(__file__), code),
            **(job.tags() if job else {}),
            **({results.REPLACES_TAG: _made_by(replaces)} if replaces is not None else {}),
        }
        parent = job.parent_run_id if job else None
        with start_run(uri, t.experiment, t.dir, config.run_name, tags, parent) as tr:
            claim = claims.Claim(tr.client, experiment_id, config.job_key, code, tr.run_id)
            if t.resume:  # one started together with this one: the older goes on
                claim.first()
            settled = claim.settled if t.resume else lambda: None

            def record(rec: results.Record) -> dict[str, float]:
                tr.log(rec)
                metrics.update(rec.metrics)
                tags.update(rec.tags)
                termination.check()  # between stages: a swallowed interrupt stops here
                return metrics

            try:
                with termination.guard():
                    _stages(config, out, tr, record, uri, settled, code)
                keras = [] if route(config.backbone) else [results.KERAS]
                variants = [*keras, *config.stage.variants]
                log.info("results\n%s", job_record.table(metrics, variants, tags))
            except claims.Behind:
                raise  # not a failure: this job waits for the older run (run())
            except BaseException as exc:
                traceback.print_exc()  # standard error is the job log here
                how = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
                log.info("%s %s after %.1f s", label, how, time.perf_counter() - started)
                raise
            finally:
                with contextlib.suppress(Exception):
                    tr.log_artifact(log_file)
        elapsed = time.perf_counter() - started
        log.info(
            "%s finished in %.1f s (%s), run %s",
            label,
            elapsed,
            headline(metrics),
            tr.run_id,
        )
        if job is None:
            log.info(
                "results: run %s, experiment %r in %s; see them with: %s",
                tr.run_id,
                t.experiment,
                uri,
                show_command(uri),
            )
    return metrics


def _stages(
    config: Config,
    out: Path,
    tr,
    record: Callable[[results.Record], dict],
    uri: str,
    settled: Callable[[], None],
    code: str,
) -> None:
    timer = _Timer()
    settings = config.as_dict()
    tr.log_params(flatten(settings))
    tr.log_text(OmegaConf.to_yaml(settings), results.CONFIG_FILE)
    delegate = dataclasses.asdict(config.delegate)  # the runner's --delegate JSON

    way = route(config.backbone)  # a .tflite file, a model tfmot cannot take: no Keras model
    with timer("check"):  # the device, before TensorFlow is even imported
        keras = "off" if way else config.benchmark.keras
        ready = open_device(config.device).check(delegate, keras)
    for note in ready.notes:
        log.warning("device %s: %s", config.device.name, note)
    _warn_once(float16_note(config.device.name, ready.facts, fp16_asked(config.stage.variants)))
    record(for_device_check(ready))
    if way:
        from pruneflow.foreign_job import foreign_stages

        args = (out, record, timer, delegate, settled, calibration_sample)
        return foreign_stages(config, way, *args, meter=ready.energy)

    import tf_keras as keras

    from pruneflow.steps.benchmark.benchmark import run_benchmark, write_images

    keras.backend.clear_session()  # the jobs of a sweep share this process

    key = config.job_key  # the run's tag
    with timer("data"):
        data = instantiate(config.dataset)
    job_key, models_key = config.keys()
    if job_key != key:  # the files changed as they loaded (tfds downloaded them): the
        tr.set_tags({results.JOB_KEY_TAG: job_key})  # key the next run will have

    # the models of a job that differed only in where and how they were timed: timed again
    cache = models_cache.ModelsCache(
        config.paths.cache_dir, models_cache.models_key(models_key, code)
    )
    with cache.locked():
        made = cache.load(out)
        if made is not None:
            log.info("models %s (cache hit): made by run %s, timed here", cache.key, made.run_id)
            # the baseline as this job finds it (and shares it with a store that lacks it);
            # where no cache has it any more, as the models' maker had it
            baseline = get_baseline(config, data, uri, train=False)
            record(for_baseline(baseline) if baseline else made.records[0])
            for rec in made.records[1:]:
                record(rec)
            record(results.Record(tags={results.MODELS_FROM_TAG: made.run_id}))
            settled()
        else:
            models_cache.detach(out)
            made = _make_models(config, data, out, record, timer, uri, settled)
            cache.save(out, made, tr.run_id)
    paths = made.paths

    with timer("benchmark"):
        b = config.benchmark
        images = write_images(
            data.x_val, data.y_val, data.class_names, b.images, out / "images", seed=b.seed
        )
        tflite = {v: p for v, p in paths.items() if v != results.KERAS}
        timing = run_benchmark(
            paths[results.KERAS],
            tflite,
            images,
            b,
            config.device,
            delegate,
            out,
            ready.keras_on,
            ready.energy,
        )
    so_far = record(for_timing(timing))
    record(job_record.for_models(config, so_far, paths, timing))  # each variant a LoggedModel

    record(job_record.for_stage_times(timer.seconds))


def _make_models(config: Config, data, out: Path, record, timer, uri: str, settled):
    """Baseline (cached) -> prune -> cluster -> QAT -> convert -> evaluate: the job's models and
    the records that say how they were made (:class:`pruneflow.models_cache.Made`)."""
    from pruneflow.results import KERAS
    from pruneflow.steps.cluster.cluster import cluster_model
    from pruneflow.steps.cluster.config import preserves_sparsity
    from pruneflow.steps.convert.convert import describe, export_models
    from pruneflow.steps.evaluate import for_accuracy, predict
    from pruneflow.steps.prune.prune import prune_model
    from pruneflow.steps.quantize.qat import quantize_aware, scheme_for
    from pruneflow.steps.train.train import load_model

    kept: list[results.Record] = []

    def keep(rec: results.Record) -> dict:
        kept.append(rec)
        return record(rec)

    with timer("train"):
        baseline = get_baseline(config, data, uri)
    keep(for_baseline(baseline))

    with timer("prune"), keys_under("prune."):  # layer names are checked against the model
        pruned = prune_model(
            baseline.model_path,
            data,
            config.prune,
            batch_size=config.train.batch_size,
            seed=config.seed,
        )
    epochs = len(baseline.history.get("loss", []))
    keep(for_pruning(pruned, epochs, out))
    # still the run of this config that goes on (a concurrent sweep's may be older): asked
    # once fine-tuning has taken the second this look waits for, so a job rarely waits
    settled()

    model, clustered = pruned.model, None
    if config.cluster.clusters:
        with timer("cluster"), keys_under("cluster."):
            clustered = cluster_model(
                pruned.model,
                data,
                config.cluster,
                preserve_sparsity=preserves_sparsity(config.prune.sparsity),
                batch_size=config.train.batch_size,
                seed=config.seed,
            )
        model = clustered.model
        epochs += len(pruned.history.get("loss", []))
        table = pruned.layer_table(model, clustered.layers)
        keep(for_clustering(clustered, table, epochs, out))

    stage, qat = config.stage, None
    if stage.needs_qat:
        scheme = scheme_for(clustered is not None, config.prune.sparsity > 0)
        with timer("qat"):
            qat = quantize_aware(
                model,
                data,
                stage,
                batch_size=config.train.batch_size,
                seed=config.seed,
                scheme=scheme,
            )
        keep(for_qat(scheme))
    with timer("convert"):
        calibration = calibration_sample(config, data)
        paths = export_models(
            model, stage.variants, out / results.MODELS_DIR, calibration, qat_model=qat
        )
        if clustered is None:
            files = describe(paths)
        else:
            files = describe(paths, clustered.layers, clustered.unique_weights)
    keep(for_files(files))

    with timer("evaluate"):  # every model on the same images, the baseline's too (paired)
        tflite = {v: p for v, p in paths.items() if v != KERAS}
        dense = load_model(baseline.model_path)
        models = {results.BASELINE: dense, KERAS: model, **tflite}
        predictions = predict(models, data.x_val)
    keep(for_accuracy(predictions, data.y_val, out))
    return models_cache.Made(kept, paths)


def get_baseline(config: Config, data, uri: str, train: bool = True):
    """The job's dense baseline (:class:`~pruneflow.steps.train.train.Baseline`): from the
    local cache, else the tracking store, else trained (and kept in both; ``train=False``:
    None), by the key of what determines it (dataset, backbone, training, seed, the data
    itself). ``pruneflow compare`` finds a run's baseline through it too."""
    from pruneflow.steps.train.train import train_baseline

    return train_baseline(
        data,
        lambda: instantiate(config.backbone, data.image_shape, data.num_classes),
        config.train,
        seed=config.seed,
        cache_dir=config.paths.cache_dir,
        store=(
            baselines.BaselineStore(uri, config.tracking.dir)
            if config.tracking.store_baselines
            else None
        ),
        key_spec=baseline_spec(config, data.fingerprint()),
        train=train,
    )


def calibration_sample(config: Config, data):
    """The training images that calibrate a job's int8 variants (``stage``, seeded)."""
    return data.train_sample(config.stage.representative_samples, seed=config.seed)


_MANY_CLASSES = 1000


def _check_layer_selection(config: Config) -> None:
    """Layer names exist once there is a model: build it untrained (its layer names and its
    channel groups do not depend on the data) and select, so that a selection leaving nothing
    to prune or cluster, or a layer with fewer weights than clusters, is a config error before
    any run or training. Only when the selection is not the default, channels are removed or
    weights clustered. With channels removed, clustering is checked on the untrained model
    thinned as the job will thin it (with ``channel_distribution=global`` the trained model's
    layers may come out thinner; the cluster step checks again)."""
    p, c = config.prune, config.cluster
    given = config.backbone.trained  # a model file: whether it has layers to prune is unknown
    selects = p.sparsity > 0 and (p.layer_types or p.exclude_layers or p.keep_first_last or given)
    if selects or p.channels > 0 or c.clusters:
        from pruneflow.steps.cluster import cluster
        from pruneflow.steps.prune import channels
        from pruneflow.steps.prune.prune import select_layers

        size, depth = config.dataset.image_size, config.dataset.channels
        # the class count is the data's, unknown before loading it: so many classes that the
        # output layer is never too small here (the cluster step checks it on the real model)
        classes = config.backbone.output_classes() or _MANY_CLASSES
        model = instantiate(config.backbone, (size, size, depth), classes)
        with keys_under("prune."):
            if selects:
                select_layers(model, p.layer_types, p.exclude_layers, p.keep_first_last)
            if p.channels > 0:
                graph = channels.analyze(model)
                channels.check_selection(
                    graph, p.channel_exclude, p.channel_keep_first_last, model, p.channels
                )
                if c.clusters:
                    model = channels.rebuild(model, channels.plan(model, p.channels, p))
        with keys_under("cluster."):
            if c.clusters:
                cluster.select(model, c)


def _made_by(run) -> str:
    """``<run id> (pruneflow <version>, code <hash>)``: which code made ``run``."""
    tags = run.data.tags
    version, code = tags.get(results.VERSION_TAG, "?"), tags.get(results.CODE_TAG, "unknown")
    return f"{run.info.run_id} (pruneflow {version}, code {code})"


class _Timer:
    """Wall time per step (``time/<step>_s``: where the time of a run goes)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, stage: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = time.perf_counter() - t0


_WARNED: set[str] = set()  # warnings said once per process: once per sweep, not per job


def _warn_once(message: str | None) -> None:
    if message and message not in _WARNED:
        _WARNED.add(message)
        log.warning("%s", message)


def _headline_variant(metrics: dict[str, float]) -> str:
    """The variant a summary shows: the timed .tflite variant that :data:`VARIANTS` ranks
    first (int8 in the defaults)."""
    timed = [
        k.split("/")[0]
        for k in metrics
        if k.endswith("/" + results.latency("p50")) and not k.startswith(results.KERAS)
    ]
    ranked = sorted(timed, key=lambda v: (VARIANTS[v].rank if v in VARIANTS else 99, v))
    return ranked[0] if ranked else ""


def headline(metrics: dict[str, float]) -> str:
    """``tflite_int8 acc 0.983, p50 0.07 ms, gzip 12.3 KB``: the key numbers of a run."""
    variant = _headline_variant(metrics)
    if not variant:
        return "no variant timed"
    gz = metrics.get(results.metric(variant, results.GZIP), math.nan) / 1024
    acc = metrics.get(results.metric(variant, results.ACCURACY), math.nan)
    p50 = metrics.get(results.metric(variant, results.latency("p50")), math.nan)
    return f"{variant} acc {acc:.3f}, p50 {p50:.3g} ms, gzip {gz:.1f} KB"
