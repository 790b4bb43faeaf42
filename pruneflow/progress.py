"""What a user waiting on a job sees move: durations and the per-epoch line, written once.

Keras fits silently (``verbose=0``: its progress bar would flood a log file and interleave
across a sweep's workers); instead every fit (training, fine-tuning, clustering, QAT) says one
line per epoch through pruneflow's logger, which the console shows while a job runs
(:func:`pruneflow.process.job_log`) and the job log keeps; on a terminal a job has to itself,
a live line within each epoch too (:data:`live`). No TensorFlow here: the sweep's summary
uses :func:`duration` too.
"""

from __future__ import annotations

# Set by the command line (pruneflow.cli.main): standard output is a terminal and this job has
# it to itself (a single run, or a sweep's jobs one after another in this process). A fit then
# also redraws one line within each epoch; in a log, a pipe or a parallel launcher's workers,
# the plain lines alone.
live = False
REDRAW_S = 0.2  # the live line is redrawn at most this often


def duration(seconds: float) -> str:
    """``12.3 s`` below a minute, else ``4m05s`` or ``1h02m05s``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, s = divmod(int(round(seconds)), 60)
    hours, m = divmod(minutes, 60)
    return f"{hours}h{m:02d}m{s:02d}s" if hours else f"{m}m{s:02d}s"


def epoch_line(
    label: str,
    epoch: int,
    epochs: int,
    loss: float | None,
    val_accuracy: float | None,
    elapsed: float,
) -> str:
    """``fine-tune epoch 2/5: loss 0.3121, val acc 0.8741 (12.4 s, ~18.6 s left)``.

    ``epoch`` counts from 1; ``elapsed`` is the fit's time so far. What is left is estimated
    as the mean epoch so far times the epochs to go (the first epoch includes building the
    graph, so the first estimate is on the high side).
    """
    parts = []
    if loss is not None:
        parts.append(f"loss {loss:.4f}")
    if val_accuracy is not None:
        parts.append(f"val acc {val_accuracy:.4f}")
    timing = duration(elapsed)
    if epoch < epochs:
        timing += f", ~{duration(elapsed / epoch * (epochs - epoch))} left"
    return f"{epoch_name(label, epoch, epochs)}: {', '.join(parts)} ({timing})"


def epoch_name(label: str, epoch: int, epochs: int) -> str:
    """``fine-tune epoch 2/5``: how the logged line and the live one name an epoch."""
    return f"{label} epoch {epoch}/{epochs}"
