import pytest
from mlflow.tracking import MlflowClient

from pruneflow.results import ERROR_MESSAGE_TAG, ERROR_TYPE_TAG
from pruneflow.tracking.runs import flatten, prepare_store, resolve_uri, start_run
from pruneflow.tracking.store import TrackingError


def test_flatten_to_dotted_keys():
    cfg = {"a": {"b": 1, "c": [10, 20]}, "d": None, "e": [], "f": {"g": {"h": "x"}}}
    assert flatten(cfg) == {
        "a.b": "1",
        "a.c.0": "10",
        "a.c.1": "20",
        "d": "None",
        "e": "[]",
        "f.g.h": "x",
    }


def test_uri_precedence(tmp_path, monkeypatch):
    assert resolve_uri(None, tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    assert resolve_uri(None, tmp_path) == "http://127.0.0.1:1"
    assert resolve_uri("sqlite:///x.db", tmp_path) == "sqlite:///x.db"


def test_failed_run_is_marked_failed_and_keeps_its_artifacts(tmp_path):
    uri = resolve_uri(None, tmp_path)
    (tmp_path / "part.txt").write_text("partial")
    with pytest.raises(RuntimeError, match="boom"):
        with start_run(uri, "exp", tmp_path) as tr:
            tr.log_metrics({"a/accuracy": 0.5})
            tr.log_artifact(tmp_path / "part.txt", "models")
            raise RuntimeError("boom")
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("exp").experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.metrics == {"a/accuracy": 0.5}
    assert [a.path for a in client.list_artifacts(run.info.run_id, "models")] == ["models/part.txt"]
    # the default store keeps artifacts beside the database
    assert (tmp_path / "artifacts").is_dir()


def test_inherited_run_id_does_not_hijack_the_run(tmp_path, monkeypatch):
    uri = resolve_uri(None, tmp_path)
    with start_run(uri, "exp", tmp_path) as first:
        pass
    monkeypatch.setenv("MLFLOW_RUN_ID", first.run_id)
    with start_run(uri, "exp", tmp_path) as second:
        second.log_params({f"p{i}": i for i in range(250)})  # more than one batch of params
    assert second.run_id != first.run_id
    client = MlflowClient(tracking_uri=uri)
    assert len(client.get_run(second.run_id).data.params) == 250
    assert client.get_run(first.run_id).info.status == "FINISHED"


def test_a_failed_run_says_why_and_an_interrupted_one_is_killed(tmp_path):
    from pruneflow.process import Interrupted

    uri = resolve_uri(None, tmp_path)
    with pytest.raises(RuntimeError):
        with start_run(uri, "exp", tmp_path, run_name="named-early") as failed:
            raise RuntimeError("boom: the device is down")
    with pytest.raises(KeyboardInterrupt):
        with start_run(uri, "exp", tmp_path) as killed:
            raise Interrupted("terminated by SIGTERM")
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(failed.run_id)
    assert run.info.status == "FAILED" and run.info.run_name == "named-early"
    assert run.data.tags[ERROR_TYPE_TAG] == "RuntimeError"
    assert run.data.tags[ERROR_MESSAGE_TAG] == "boom: the device is down"
    assert client.get_run(killed.run_id).info.status == "KILLED"


def test_a_tf_error_after_sigterm_still_ends_killed():
    """A signal landing in TensorFlow's C++ code surfaces as a TF error: the job's guard
    turns it into an interrupt because a termination was requested."""
    import os
    import signal
    import time

    from pruneflow.process import Interrupted, Termination

    with Termination() as term:
        with pytest.raises(Interrupted) as err:
            with term.guard():
                try:
                    os.kill(os.getpid(), signal.SIGTERM)
                    time.sleep(5)
                except Interrupted:
                    pass  # swallowed where the signal landed, as in TF's C++ code ...
                raise RuntimeError("... and TensorFlow raises its own error after")
    assert isinstance(err.value.__cause__, RuntimeError)
    assert term.requested == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored after the job


def test_an_unusable_store_is_one_error_naming_it(tmp_path):
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"not a database")
    with pytest.raises(TrackingError) as err:
        prepare_store(resolve_uri(None, tmp_path), "exp", tmp_path)
    assert str(db) in str(err.value) and "\n" not in str(err.value)


def test_an_interrupt_swallowed_by_library_code_still_ends_the_job():
    import os
    import signal
    import time

    from pruneflow.process import Interrupted, Termination

    with Termination() as term:
        with pytest.raises(Interrupted):
            with term.guard():
                try:
                    os.kill(os.getpid(), signal.SIGTERM)
                    time.sleep(5)
                except BaseException:  # noqa: BLE001 - as some library code does
                    pass
                # ... and the work goes on to its end, where the guard stops it


def test_a_signal_swallowed_in_a_weakref_callback_is_raised_at_the_next_point(capfd):
    """The command line's SIGTERM and Ctrl-C: one that landed where Python swallows it is
    raised again, once, at the next interrupt_point, with no "Exception ignored" printed;
    a SIGINT the shell ignores stays ignored; the handlers are restored after."""
    import signal

    from helpers.signals import swallowed_in_a_weakref_callback
    from pruneflow.process import (
        Interrupted,
        interrupt_handled,
        interrupt_point,
        interrupts_kept,
    )

    before = signal.getsignal(signal.SIGTERM)
    with interrupts_kept():
        swallowed_in_a_weakref_callback(signal.SIGTERM)
        with pytest.raises(Interrupted, match="terminated by SIGTERM"):
            interrupt_point()
        interrupt_point()  # raised once
        swallowed_in_a_weakref_callback(signal.SIGINT)
        with pytest.raises(KeyboardInterrupt) as err:
            interrupt_point()
        assert type(err.value) is KeyboardInterrupt  # Ctrl-C's own, as before
        with pytest.raises(Interrupted):  # one that reaches the command ...
            signal.raise_signal(signal.SIGTERM)
        interrupt_handled()  # ... is handled there, not raised again
        interrupt_point()
    assert "Exception ignored" not in capfd.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is before

    ignored = signal.signal(signal.SIGINT, signal.SIG_IGN)  # nohup, a shell's &
    try:
        with interrupts_kept():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, ignored)


def test_a_new_store_is_made_by_a_child_while_this_process_works(tmp_path):
    """prepare_store(..., meanwhile): a new sqlite store is made by another process while
    ``meanwhile`` runs here; for a store that exists, ``meanwhile`` is not run at all."""
    import os
    import time

    uri = resolve_uri(None, tmp_path)
    db = tmp_path / "mlflow.db"
    seen = []

    def meanwhile():
        seen.append(os.getpid())
        time.sleep(0.2)

    experiment_id = prepare_store(uri, "exp", tmp_path, meanwhile)
    assert seen == [os.getpid()] and db.exists()
    assert MlflowClient(uri).get_experiment_by_name("exp").experiment_id == experiment_id
    assert prepare_store(uri, "exp", tmp_path, meanwhile) == experiment_id
    assert len(seen) == 1  # the store existed: nothing to overlap


def test_an_interrupt_while_a_child_makes_the_store_leaves_a_whole_store(tmp_path):
    """Ctrl-C during the overlapped work: the child is waited for (a migration is never cut
    off) and the store it made is whole for the next run."""
    uri = resolve_uri(None, tmp_path)

    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare_store(uri, "exp", tmp_path, interrupted)
    assert (tmp_path / "mlflow.db").exists()
    experiment_id = prepare_store(uri, "exp", tmp_path)
    assert MlflowClient(uri).get_experiment(experiment_id).name == "exp"
