import numpy as np
import pytest

from pruneflow.steps.convert.convert import export_models, file_sizes
from pruneflow.steps.evaluate import evaluate, keras_accuracy, tflite_predict
from pruneflow.steps.train.train import load_model

# post-training variants (tflite_int8_qat needs a quantization-aware model: test_quantize.py)
VARIANTS = ["tflite_fp32", "tflite_dynamic", "tflite_float16", "tflite_int8"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, trained_model_path, digits):
    model = load_model(trained_model_path)
    out = tmp_path_factory.mktemp("models")
    return model, export_models(model, VARIANTS, out, digits.train_sample(32))


def test_every_variant_is_written_with_its_io_types(exported):
    from ai_edge_litert.interpreter import Interpreter

    _, paths = exported
    assert set(paths) == {"keras", *VARIANTS}
    for variant in VARIANTS:
        interp = Interpreter(model_path=str(paths[variant]))
        dtype = interp.get_input_details()[0]["dtype"]
        out_dtype = interp.get_output_details()[0]["dtype"]
        expected = np.int8 if variant == "tflite_int8" else np.float32
        assert (dtype, out_dtype) == (expected, expected), variant
    # quantized weights make files smaller than float32
    fp32 = paths["tflite_fp32"].stat().st_size
    assert paths["tflite_dynamic"].stat().st_size < 0.4 * fp32
    assert paths["tflite_int8"].stat().st_size < 0.4 * fp32
    assert paths["tflite_float16"].stat().st_size < 0.6 * fp32


def test_unknown_variant_is_rejected():
    from pruneflow.steps.convert.config import StageConfig

    with pytest.raises(ValueError, match="valid values"):
        StageConfig(["tflite_int3"])


def test_accuracy_on_the_whole_split_matches_keras(exported, digits):
    model, paths = exported
    acc = evaluate({"keras": model, **{v: paths[v] for v in VARIANTS}}, digits.x_val, digits.y_val)
    assert acc["keras"] == keras_accuracy(model, digits.x_val, digits.y_val)
    assert acc["keras"] > 0.8  # two epochs on real digits
    assert acc["tflite_fp32"] == pytest.approx(acc["keras"], abs=0.003)
    assert acc["tflite_int8"] == pytest.approx(acc["tflite_fp32"], abs=0.02)


def test_batched_prediction_equals_one_by_one(exported, digits):
    _, paths = exported
    x = digits.x_val[:70]  # 70 is not a multiple of the batch: the tail batch is resized
    for variant in ("tflite_fp32", "tflite_int8"):
        batched = tflite_predict(paths[variant], x, batch_size=32)
        single = tflite_predict(paths[variant], x, batch_size=1)
        assert len(batched) == 70 and (batched == single).all()


def test_gzip_size_reflects_zeros(tmp_path):
    dense = tmp_path / "dense.bin"
    sparse = tmp_path / "sparse.bin"
    rng = np.random.default_rng(0)
    w = rng.standard_normal(10000).astype(np.float32)
    dense.write_bytes(w.tobytes())
    w[:9000] = 0
    sparse.write_bytes(w.tobytes())
    (raw_d, gz_d), (raw_s, gz_s) = file_sizes(dense), file_sizes(sparse)
    assert raw_d == raw_s == 40000
    assert gz_s < 0.25 * gz_d


def test_conversion_workers_end_with_the_step_however_it_ends():
    """An interrupt (or an error) while worker processes start or convert cancels their work
    and ends them: none outlives the convert step or runs beside the timing that follows."""
    from pruneflow.steps.convert.convert import _Workers

    with pytest.raises(KeyboardInterrupt), _Workers(1) as pool:
        processes = list(pool._pool._processes.values())
        assert processes and all(p.is_alive() for p in processes)
        raise KeyboardInterrupt  # while the worker still imports TensorFlow
    assert not any(p.is_alive() for p in processes)


def test_small_models_convert_serially_and_large_ones_with_a_worker(trained_model_path):
    from helpers.models import transfer
    from pruneflow.steps.convert.convert import conversion_workers

    cnn = load_model(trained_model_path)
    assert conversion_workers(cnn, 4) == 0
    mobilenet = transfer((32, 32, 3), 10, "mobilenetv2", weights=None)
    assert conversion_workers(mobilenet, 4) == 1
    assert conversion_workers(mobilenet, 1) == 0  # one variant: nothing to convert beside it
