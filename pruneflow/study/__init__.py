"""The study: what pruneflow adds around jobs so that a sweep is one experiment.

- :mod:`.config`: the ``tracking`` and ``paths`` sections (where runs and files go);
- :mod:`.tracking`: the MLflow store, runs, stale runs;
- :mod:`.baselines`: trained baselines kept in the store;
- :mod:`.jobs`: a sweep's jobs, listed and checked ahead, and each job's context;
- :mod:`.sweep`: the parent run of a multirun (Hydra's callback), and its end;
- :mod:`.summary`: the table printed when a sweep ends;
- :mod:`.report`: runs read back as the paper's tables, CSVs (per run, over seeds), plots and the
  best sparsity with its evidence.
"""
