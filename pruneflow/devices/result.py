"""The runner's result, typed: :class:`RunnerResult` read from the JSON document the runner
writes (:func:`pruneflow.devices.runner.main`), one :class:`ModelResult` per model.

The runner stays one self-contained file that writes plain JSON; this is the host's reading
of it, checked on the way in: a file that is not such a document raises
:class:`MalformedResult` naming the file and the first key that is wrong.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any


class MalformedResult(ValueError):
    """A runner result that is not the runner's document; the message names the key."""


@dataclass
class EnergyTrace:
    """The energy pass after a model's timing (``power_sampler.energy_pass``, ``--energy``):
    its idle and running windows (``time.time()`` on the device), the images run in the
    second, and the raw power samples (none where the meter ran on this machine:
    ``source="host"``)."""

    source: str  # pmic | command | host
    idle_start: float
    idle_end: float
    run_start: float
    run_end: float
    images: int  # inferences in the running window
    times: list[float] = field(default_factory=list)  # each sample's time
    watts: list[float] = field(default_factory=list)
    failures: list[Any] = field(default_factory=list)  # [time, what the read printed]

    def __post_init__(self) -> None:
        if len(self.times) != len(self.watts):
            raise MalformedResult(f"{len(self.times)} times for {len(self.watts)} watts")


@dataclass
class ModelResult:
    """One model timed by the runner's protocol (:func:`pruneflow.devices.runner.
    timed_passes`): times in milliseconds over every timed image of every pass, first pass
    first; warm-up images apart."""

    model: str  # the model's file name
    kernels: str  # what ran it: xnnpack | builtin | the external delegate | tensorflow
    note: str  # why the delegate fell back to builtin kernels ("" when it did not)
    load_ms: float  # building (and allocating) the interpreter, or loading the Keras model
    times_ms: list[float]  # decode_ms + invoke_ms + the class, image by image
    decode_ms: list[float]  # read + decode + preprocess
    invoke_ms: list[float]  # set_tensor + invoke + get_tensor
    predictions: list[int]
    labels: list[int]  # one per image of a pass
    warmup_ms: list[float] = field(default_factory=list)
    repeats: int = 1  # passes over the images
    threads: int | None = None  # the threads asked for (null: the runtime's default)
    threads_used: int | None = None  # threads the model added to its process, and the caller
    peak_rss_kb: int | None = None  # the model's own process (none: timed in pruneflow's)
    hygiene: dict[str, dict[str, Any]] = field(default_factory=dict)  # CPU state before, after
    cooldown_s: float = 0.0  # waited for the CPU to cool before the model
    cooldown_note: str = ""  # why it did not cool down (or skipped)
    tensorflow: str | None = None  # a Keras model: the TensorFlow that ran it
    energy: EnergyTrace | None = None  # with --energy: the energy pass after the timing
    # a model that asks for FP16 arithmetic: what computed it, float16 | float32 (runner.arithmetic)
    arithmetic: str | None = None

    def __post_init__(self) -> None:
        n = len(self.times_ms)
        for name in ("decode_ms", "invoke_ms", "predictions"):
            if len(getattr(self, name)) != n:
                raise MalformedResult(f"{name} has {len(getattr(self, name))} values for {n} times")
        if not self.labels or n % len(self.labels):
            raise MalformedResult(f"times_ms has {n} values: not passes over the labels")


@dataclass
class RunnerResult:
    """The runner's document: the device as it saw it, the protocol, the images in order and
    each model's result by name (a model's file stem; ``keras`` for the Keras model)."""

    runner_version: int
    device: dict[str, Any]  # what the numbers were measured on (CPU, cores, OS, runtime ...)
    delegate: dict[str, Any]
    warmup: int
    repeats: int
    classes: list[str]
    images: list[str]  # relative paths, in the order every model saw them
    results: dict[str, ModelResult]

    @classmethod
    def read(cls, path: str | Path) -> RunnerResult:
        """The result in the runner's JSON file ``path``; :class:`MalformedResult` where it is
        not one."""
        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise MalformedResult(f"the runner's result {path} cannot be read: {exc}") from exc
        try:
            return cls.from_dict(doc)
        except MalformedResult as exc:
            raise MalformedResult(f"the runner's result {path} is malformed: {exc}") from None

    @classmethod
    def from_dict(cls, doc: Any) -> RunnerResult:
        """The result in the runner's document ``doc`` (parsed JSON)."""
        top = _typed(cls, doc, "")
        models = {}
        for name, r in top["results"].items():
            where = f"results.{name}."
            found = _typed(ModelResult, r, where)
            if found.get("energy") is not None:  # the energy pass's trace
                trace = _typed(EnergyTrace, found["energy"], f"{where}energy.")
                try:
                    found["energy"] = EnergyTrace(**trace)
                except MalformedResult as exc:
                    raise MalformedResult(f"{where}energy: {exc}") from None
            try:
                models[name] = ModelResult(**found)
            except MalformedResult as exc:
                raise MalformedResult(f"{where}{exc}") from None
        return cls(**{**top, "results": models})


# What each annotation of the two classes accepts from JSON (a whole number is a float there
# too; true and false are no numbers), and for a list what its items are.
_NUMBER, _NONE = (int, float), type(None)
_KINDS: dict[str, tuple[tuple[type, ...], tuple[type, ...] | None]] = {
    "str": ((str,), None),
    "int": ((int,), None),
    "float": (_NUMBER, None),
    "int | None": ((int, _NONE), None),
    "str | None": ((str, _NONE), None),
    "list[float]": ((list,), _NUMBER),
    "list[int]": ((list,), (int,)),
    "list[str]": ((list,), (str,)),
    "list[Any]": ((list,), None),
    "EnergyTrace | None": ((dict, _NONE), None),
    "dict[str, Any]": ((dict,), None),
    "dict[str, dict[str, Any]]": ((dict,), None),
    "dict[str, ModelResult]": ((dict,), None),
}


def _typed(cls, doc: Any, where: str) -> dict[str, Any]:
    """``cls``'s fields from the mapping ``doc`` (a document's key ``where``): each present (or
    defaulted) and of its type; keys ``cls`` does not know are left out (a newer runner may add
    some)."""
    if not isinstance(doc, dict):
        raise MalformedResult(f"{where.rstrip('.') or 'the document'} is not a JSON object")
    found = {}
    for f in fields(cls):
        if f.name not in doc:
            if f.default is MISSING and f.default_factory is MISSING:  # required
                raise MalformedResult(f"{where}{f.name} is missing")
            continue
        kinds, items = _KINDS[f.type]
        value = found[f.name] = doc[f.name]
        if not _is(value, kinds):
            raise MalformedResult(f"{where}{f.name}={value!r} is not {_names(kinds)}")
        bad = next((v for v in value if not _is(v, items)), None) if items else None
        if bad is not None:
            raise MalformedResult(f"{where}{f.name} holds {bad!r}, not {_names(items)}")
    return found


def _is(value: Any, kinds: tuple[type, ...]) -> bool:
    return not isinstance(value, bool) and isinstance(value, kinds)


def _names(kinds: tuple[type, ...]) -> str:
    if kinds == _NUMBER:
        return "a number"
    words = {int: "an integer", float: "a number", str: "a string", list: "a list"}
    words |= {dict: "a JSON object", _NONE: "null"}
    return " or ".join(words[k] for k in kinds)
