import json

from pruneflow.steps.train.train import cache_key, code_fingerprint, train_baseline


def test_cache_key_is_stable_and_sensitive():
    spec = {"dataset": {"a": 1}, "train": {"epochs": 2}, "seed": 1}
    assert cache_key(spec) == cache_key(json.loads(json.dumps(spec)))
    assert cache_key(spec) != cache_key({**spec, "seed": 2})
    assert cache_key(spec) != cache_key({**spec, "train": {"epochs": 3}})
    assert len(code_fingerprint()) == 16


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
