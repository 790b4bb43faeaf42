"""The ``prune`` group's schema (options ``default`` and ``paper`` in conf/prune/). Light: no
TensorFlow. Every key's default is here; the step (:func:`.prune.prune_model`) receives this."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pruneflow.errors import positive, require
from pruneflow.steps.prune.channels import CHANNEL_DISTRIBUTIONS, CHANNEL_SCHEDULES, CRITERIA
from pruneflow.steps.prune.distributions import DISTRIBUTIONS

SCHEDULES = ("constant", "polynomial")
PATTERNS = ("unstructured", "2:4")
LR_SCHEDULES = ("constant", "cosine")  # the fine-tuning learning rate: fixed, or cosine decay
# Framework fact: the Keras layer types whose kernels tfmot's magnitude pruning zeroes.
# DepthwiseConv2D is registered by tfmot with no prunable weight, so it stays dense.
PRUNABLE_LAYER_TYPES = frozenset(
    {
        "Conv1D",
        "Conv2D",
        "Conv3D",
        "Conv2DTranspose",
        "Conv3DTranspose",
        "SeparableConv1D",
        "SeparableConv2D",
        "Dense",
        "Embedding",
    }
)


@dataclass
class PruneConfig:
    sparsity: float = 0.5  # target fraction of zero weights, [0, 1); 0 = no pruning
    schedule: str = "polynomial"  # polynomial (ramps 0 -> target while fine-tuning) | constant
    epochs: int = 3  # fine-tuning epochs with pruning
    learning_rate: float = 1e-3  # the fine-tuning learning rate
    frequency: int = 10  # training steps between mask updates
    pattern: str = "unstructured"  # unstructured | 2:4 (two zeros in every block of four)
    layer_types: list[str] | None = None  # null: every prunable type; e.g. [Conv2D]
    exclude_layers: list[str] = field(default_factory=list)  # layer names kept dense
    keep_first_last: bool = False  # keep the first and last prunable layers dense
    # The recipe measured best (BENCHMARKS.md, issue #11): one magnitude threshold across the
    # layers, a ramp over the first 75% of fine-tuning, then recovery at the final sparsity.
    # The paper's method is the option prune=paper (conf/prune/paper.yaml).
    distribution: str = "global"  # uniform | erk | global: the target spread over the layers
    ramp_fraction: float = 0.75  # the polynomial ramp ends at this fraction of fine-tuning
    lr_schedule: str = "constant"  # constant | cosine (decays over the fine-tuning steps)
    # Channel pruning (steps/prune/channels.py): whole filters and units removed, the model
    # rebuilt smaller and dense, then fine-tuned (prune.epochs); prune.sparsity then zeroes the
    # weights of the thin model. Defaults measured best (BENCHMARKS.md, issue #17).
    channels: float = 0.0  # fraction of prunable output channels to remove, [0, 1); 0 = off
    channel_criterion: str = "l2"  # l2 | l1 (filter norms) | bn (|gamma| of a BatchNorm after)
    channel_distribution: str = "uniform"  # uniform (each layer) | global (one ranking)
    channel_min: int = 1  # channels every layer keeps at least
    channel_exclude: list[str] = field(default_factory=list)  # layers whose channels stay
    channel_keep_first_last: bool = False  # keep the first and last layers' channels
    channel_schedule: str = "oneshot"  # oneshot | gradual (a share removed every epoch)

    def __post_init__(self) -> None:
        s = self.sparsity
        require(
            isinstance(s, float) and math.isfinite(s) and 0.0 <= s < 1.0,
            "sparsity",
            s,
            "floats in [0, 1) (0 = no pruning)",
        )
        require(self.schedule in SCHEDULES, "schedule", self.schedule, str(list(SCHEDULES)))
        c = self.channels
        require(
            isinstance(c, float) and math.isfinite(c) and 0.0 <= c < 1.0,
            "channels",
            c,
            "floats in [0, 1) (0 = no channel pruning)",
        )
        self.sparsity, self.channels = s + 0.0, c + 0.0  # -0.0 is 0.0: one run name, one key
        require(
            self.epochs >= (1 if s > 0 or c > 0 else 0),
            "epochs",
            self.epochs,
            "integers >= 1 when sparsity > 0 or channels > 0 (fine-tuning with pruning)",
        )
        require(
            self.channel_criterion in CRITERIA,
            "channel_criterion",
            self.channel_criterion,
            str(list(CRITERIA)),
        )
        require(
            self.channel_distribution in CHANNEL_DISTRIBUTIONS,
            "channel_distribution",
            self.channel_distribution,
            str(list(CHANNEL_DISTRIBUTIONS)),
        )
        require(
            self.channel_min >= 1,
            "channel_min",
            self.channel_min,
            "integers >= 1 (a layer left with no channel would cut the model in two)",
        )
        require(
            self.channel_schedule in CHANNEL_SCHEDULES,
            "channel_schedule",
            self.channel_schedule,
            str(list(CHANNEL_SCHEDULES)),
        )
        rate = self.learning_rate
        require(positive(rate), "learning_rate", rate, "finite floats > 0")
        require(self.frequency >= 1, "frequency", self.frequency, "integers >= 1")
        require(self.pattern in PATTERNS, "pattern", self.pattern, str(list(PATTERNS)))
        if self.pattern == "2:4":
            require(
                s in (0.0, 0.5),
                "sparsity",
                s,
                "0.5 with pattern 2:4 (two of every four weights are zeroed)",
            )
        names = list(DISTRIBUTIONS)
        require(self.distribution in DISTRIBUTIONS, "distribution", self.distribution, str(names))
        if self.pattern == "2:4":
            require(
                self.distribution == "uniform",
                "distribution",
                self.distribution,
                "'uniform' with pattern 2:4 (every block of four keeps two weights)",
            )
        require(
            0.0 < self.ramp_fraction <= 1.0,
            "ramp_fraction",
            self.ramp_fraction,
            "floats in (0, 1]",
        )
        require(
            self.lr_schedule in LR_SCHEDULES,
            "lr_schedule",
            self.lr_schedule,
            str(list(LR_SCHEDULES)),
        )
        unknown = sorted(set(self.layer_types or ()) - PRUNABLE_LAYER_TYPES)
        require(
            not unknown,
            "layer_types",
            list(self.layer_types or ()),
            f"null or a list drawn from {sorted(PRUNABLE_LAYER_TYPES)}",
        )
