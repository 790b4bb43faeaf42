"""Per-run tracking: what every job needs to write its MLflow run, whether or not it is part of
a sweep.

- :mod:`.config`: the ``tracking``, ``paths`` and ``search`` sections (where runs and files go,
  what a trial returns);
- :mod:`.store`: the store's errors and its checks before any work (a server that answers, a
  folder that can be written, a full disk);
- :mod:`.runs`: the MLflow store, one run per job (:class:`~.runs.Tracker`), stale runs;
- :mod:`.context`: what a sweep's job knows of its sweep (its parent run, its place);
- :mod:`.claims`: jobs of one config started at once share the work;
- :mod:`.baselines`: trained baselines kept in the store;
- :mod:`.provenance`: which code made a run.
"""
