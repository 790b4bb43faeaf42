"""The study: what pruneflow adds around jobs so that a sweep is one experiment (each job's own
run is :mod:`pruneflow.tracking`'s).

- :mod:`.jobs`: a sweep's jobs, listed and checked ahead, and each job's context;
- :mod:`.sweep`: the parent run of a multirun (Hydra's callback), and its end;
- :mod:`.search`: a search within a budget (Optuna), its objectives and front;
- :mod:`.summary`: the table printed when a sweep ends;
- :mod:`.report`: runs read back as the paper's tables, CSVs (per run, over seeds), plots and the
  best sparsity with its evidence;
- :mod:`.compare`: variants re-timed in interleaved rounds, with paired intervals.
"""
