"""Small real models for stage tests."""

from __future__ import annotations


def prune_quick(path, data, **overrides):
    """``prune_model`` with the tests' smallest budget: one epoch, a constant schedule."""
    from pruneflow.prune import prune_model

    args = dict(
        sparsity=0.5,
        schedule="constant",
        epochs=1,
        batch_size=64,
        learning_rate=1e-3,
        frequency=5,
        seed=0,
    )
    return prune_model(path, data, **{**args, **overrides})
