import pytest
from mlflow.tracking import MlflowClient

from pruneflow.tracking import flatten, resolve_uri, start_run


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


def test_a_run_ending_after_a_termination_request_is_killed(tmp_path):
    from pruneflow.tracking import TERMINATION_REQUESTED

    uri = resolve_uri(None, tmp_path)
    TERMINATION_REQUESTED.set()
    try:
        with pytest.raises(RuntimeError):
            with start_run(uri, "exp", tmp_path) as tr:
                raise RuntimeError("a TF error raised where the signal landed")
    finally:
        TERMINATION_REQUESTED.clear()
    assert MlflowClient(tracking_uri=uri).get_run(tr.run_id).info.status == "KILLED"
