"""The job of a model tfmot cannot take (:mod:`pruneflow.steps.model.foreign`): a .tflite file
is the run's one variant; a Keras 3 file, a subclassed model or a SavedModel not written by
tf_keras is converted only (the stage's post-training variants), its SavedModel evaluated as
the run's baseline. Either is evaluated on the dataset, resized to the model's input, and timed
on the device like any run; the options they cannot take were refused before any work
(:func:`pruneflow.steps.model.foreign.refuse_options`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pruneflow import job_record, results
from pruneflow.config import Config, instantiate

log = logging.getLogger(__name__)


def foreign_stages(
    config: Config,
    way: str,
    out: Path,
    record: Callable[[results.Record], dict],
    timer,
    delegate: dict,
    settled: Callable[[], None],
    calibration_sample: Callable,
    meter=None,
) -> None:
    """load -> data -> convert (or take the file) -> evaluate -> benchmark, each recorded as
    :func:`pruneflow.pipeline._stages` records the whole chain's."""
    from pruneflow.steps.benchmark.benchmark import run_benchmark, write_images
    from pruneflow.steps.benchmark.record import for_timing
    from pruneflow.steps.convert.convert import describe
    from pruneflow.steps.convert.record import for_files
    from pruneflow.steps.evaluate import for_accuracy, predict
    from pruneflow.steps.model import foreign

    path = config.backbone.path
    source = None
    with timer("load"):
        if way == foreign.TFLITE:
            shape, takes = foreign.tflite_input(path)
            log.info("%s: a .tflite file taking %s %s, the run's one variant", path, shape, takes)
        else:
            log.info(
                "%s is %s: converted only (tfmot cannot take it)",
                path,
                foreign.why_not_tfmot(path),
            )
            source = foreign.load_source(path, out / "source")
            pixels = foreign.pixels_for(config.backbone)
            source = foreign.with_pixels(source, pixels, out / "source")
            shape = source.shape
        dataset = foreign.adapt_dataset(config.dataset, shape, path)
    with timer("data"):
        data = instantiate(dataset)
    settled()  # still the run of this config that goes on

    with timer("convert"):
        models_dir = out / results.MODELS_DIR
        if source is None:
            paths = foreign.take_tflite(path, models_dir)
        else:
            calibration = calibration_sample(config, data)
            paths = foreign.convert(source, config.stage.variants, models_dir, calibration)
        files = describe(paths)
    record(for_files(files))

    with timer("evaluate"):  # the source model too, in TensorFlow: the variants' baseline
        models = {**({results.BASELINE: source} if source is not None else {}), **paths}
        predictions = predict(models, data.x_val)
    if source is not None:
        accuracy = float(np.mean(predictions[results.BASELINE] == data.y_val))
        record(results.Record(metrics={results.BASELINE_ACCURACY: accuracy}))
    record(for_accuracy(predictions, data.y_val, out))

    with timer("benchmark"):  # no Keras model to time: the .tflite files only
        b = config.benchmark
        images = write_images(
            data.x_val, data.y_val, data.class_names, b.images, out / "images", seed=b.seed
        )
        timing = run_benchmark(None, paths, images, b, config.device, delegate, out, "off", meter)
    so_far = record(for_timing(timing))
    record(job_record.for_models(config, so_far, paths, timing))
    record(job_record.for_stage_times(timer.seconds))
