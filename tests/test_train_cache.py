import json

from helpers.cli import TINY, outputs_to, pruneflow_command, read_runs, run_cli
from pruneflow.identity import baseline_code, digest
from pruneflow.steps.train.train import train_baseline


def test_a_key_is_stable_and_sensitive():
    spec = {"dataset": {"a": 1}, "train": {"epochs": 2}, "seed": 1}
    assert digest(spec) == digest(json.loads(json.dumps(spec)))
    assert digest(spec) != digest({**spec, "seed": 2})
    assert digest(spec) != digest({**spec, "train": {"epochs": 3}})
    assert len(baseline_code()) == 16


def test_baseline_trains_once_then_hits_the_cache(tmp_path, digits):
    from helpers.models import cnn
    from pruneflow.steps.train.config import TrainConfig

    calls = []

    def build():
        calls.append(1)
        return cnn(digits.image_shape, digits.num_classes, filters=[4], dense_units=8)

    kwargs = dict(
        config=TrainConfig(epochs=1, batch_size=64),
        seed=0,
        cache_dir=tmp_path,
        key_spec={"test": 1},
    )
    first = train_baseline(digits, build, **kwargs)
    second = train_baseline(digits, build, **kwargs)
    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert len(calls) == 1
    assert first.model_path == second.model_path and first.model_path.exists()
    assert first.accuracy == second.accuracy and 0.1 < first.accuracy <= 1.0
    assert second.history == first.history and len(first.history["loss"]) == 1
    other = train_baseline(digits, build, **{**kwargs, "key_spec": {"test": 2}})
    assert not other.cache_hit and other.key != first.key
    # no temporary or partial entries are left behind
    entries = sorted(p.name for p in (tmp_path / "baselines").iterdir() if p.is_dir())
    assert entries == sorted([first.key, other.key])


def test_fit_says_one_line_per_epoch_with_the_historys_own_numbers(digits, caplog):
    """Keras fits silently; every fit logs `<label> epoch n/N` with the loss and validation
    accuracy its history holds (read from Keras's logs: nothing evaluated again)."""
    import logging

    import tf_keras as keras

    from helpers.models import cnn
    from pruneflow.steps.train.train import fit

    keras.utils.set_random_seed(0)
    model = cnn(digits.image_shape, digits.num_classes, filters=[4], dense_units=8)
    caplog.set_level(logging.INFO, logger="pruneflow")
    history = fit(model, digits, epochs=2, batch_size=64, learning_rate=1e-3, label="qat")
    lines = [r.getMessage() for r in caplog.records if " epoch " in r.getMessage()]
    assert len(lines) == 2 and len(history["loss"]) == 2
    for n, line in enumerate(lines):
        loss, acc = history["loss"][n], history["val_accuracy"][n]
        assert line.startswith(f"qat epoch {n + 1}/2: loss {loss:.4f}, val acc {acc:.4f} ("), line
    assert " left)" in lines[0] and " left" not in lines[1]  # an estimate while epochs remain


def test_on_a_terminal_a_fit_also_redraws_one_line_within_each_epoch(digits, monkeypatch, capsys):
    """`progress.live` (the command line sets it for a terminal a job has to itself): each
    epoch redraws one line with `\\r` on standard output, cleared before its logged line."""
    import tf_keras as keras

    from helpers.models import cnn
    from pruneflow import progress
    from pruneflow.steps.train.train import fit

    monkeypatch.setattr(progress, "live", True)
    keras.utils.set_random_seed(0)
    model = cnn(digits.image_shape, digits.num_classes, filters=[4], dense_units=8)
    fit(model, digits, epochs=2, batch_size=64, learning_rate=1e-3, label="cluster")
    out = capsys.readouterr().out
    for epoch in (1, 2):
        assert f"\rcluster epoch {epoch}/2: batch 1/" in out
        assert f"\rcluster epoch {epoch}/2: validating\033[K" in out
    assert out.endswith("\r\033[K")  # nothing left of it


def test_a_diverging_baseline_fails_naming_the_rate_and_is_never_cached(tmp_path, digits):
    """A finite but huge learning rate trains the digits CNN to a loss of NaN (issue #26): the
    run must fail saying so, not cache a model that predicts one class as every later job's
    baseline. (Measured: the loss grows with the rate, 1.3 x rate after one epoch, finite up
    to 1e35; 1e38 overflows float32 in the first steps.)"""
    import pytest

    from helpers.models import cnn
    from pruneflow.steps.train.config import TrainConfig
    from pruneflow.steps.train.train import TrainingDiverged

    def build():
        return cnn(digits.image_shape, digits.num_classes, filters=[4], dense_units=8)

    with pytest.raises(TrainingDiverged) as err:
        train_baseline(
            digits,
            build,
            TrainConfig(epochs=1, batch_size=64, learning_rate=1e38),
            seed=0,
            cache_dir=tmp_path,
            key_spec={"test": "diverges"},
        )
    message = str(err.value)
    assert "training diverged (loss nan in epoch 1)" in message, message
    assert "train.learning_rate=1e+38" in message and "nothing was cached" in message
    assert "\n" not in message
    # no entry, whole or partial: only the key's lock file
    assert [
        p.name for p in (tmp_path / "baselines").iterdir() if not p.name.endswith(".lock")
    ] == []


def test_a_cached_baseline_whose_loss_is_not_finite_is_trained_again(tmp_path, digits, caplog):
    """An entry with a NaN loss (written by a version without the check, or edited) is not
    reused: it is removed, said, and the baseline trained again."""
    import logging

    from helpers.models import cnn
    from pruneflow.steps.train.config import TrainConfig

    def build():
        return cnn(digits.image_shape, digits.num_classes, filters=[4], dense_units=8)

    kwargs = dict(
        config=TrainConfig(epochs=1, batch_size=64),
        seed=0,
        cache_dir=tmp_path,
        key_spec={"test": "nan entry"},
    )
    first = train_baseline(digits, build, **kwargs)
    meta_path = first.model_path.parent / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["history"]["val_loss"] = [float("nan")]  # the model file (and its sha256) untouched
    meta_path.write_text(json.dumps(meta))
    caplog.set_level(logging.WARNING, logger="pruneflow")
    again = train_baseline(digits, build, **kwargs)
    assert not again.cache_hit and again.source == "trained"
    assert "its training diverged (val_loss nan in epoch 1)" in caplog.text
    assert all(v == v for v in json.loads(meta_path.read_text())["history"]["val_loss"])


def test_the_console_script_fails_a_diverging_run_in_one_line_and_caches_nothing(tmp_path):
    """`pruneflow train.learning_rate=1e38` trained to NaN and ended FINISHED, its baseline
    cached for every later job of its key (issue #26)."""
    proc = run_cli(
        ["train.learning_rate=1e38", *TINY, *outputs_to(tmp_path)],
        cwd=tmp_path,
        timeout=300,
        command=pruneflow_command(),
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    said = (
        "pruneflow: error: the baseline's training diverged (loss nan in epoch 1) at "
        "train.learning_rate=1e+38: nothing was cached; try a smaller train.learning_rate"
    )
    assert proc.stderr.strip().splitlines()[-1] == said, proc.stderr[-2000:]
    _, (run,) = read_runs(tmp_path)
    assert run.info.status == "FAILED"
    assert run.data.tags["pruneflow.error.type"] == "TrainingDiverged"
    assert "diverged" in run.data.tags["pruneflow.error.message"]
    assert not list((tmp_path / "cache" / "baselines").glob("*/meta.json"))
