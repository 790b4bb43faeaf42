"""The models a job makes, kept by what makes them: a job that differs from an earlier one only
in where and how its models are timed (``device``, ``delegate``, ``benchmark``: a sweep over
threads, delegates or devices) times the earlier job's models instead of pruning, fine-tuning,
converting and evaluating them again.

An entry, ``<cache_dir>/models/<key>/``, holds the job's model files and the files its records
name (linked from the job's output folder where the file system allows, else copied) under
their path in that folder, and ``meta.json``: the records of the stages that made them
(metrics, curves, tags, artifacts), the variants' files, each file's sha256 and the run that
made them. The key (:func:`models_key`) is the job's identity without the timing sections,
with the code. Jobs of this machine that make the same models at once wait for one maker (a
file lock); entries are written atomically, checked whole when read (a corrupt one is removed
and said) and never written by a job whose records name a file outside its folder.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pruneflow.files import locked, written_whole
from pruneflow.identity import digest, file_digest
from pruneflow.results import Record
from pruneflow.tracking.store import no_space

log = logging.getLogger(__name__)

META_FILE = "meta.json"
FILES_DIR = "files"
LINKS_FILE = ".models-cache-links"  # in a job's output folder: its files linked with an entry


def models_key(models_spec: str, code: str) -> str:
    """The key of an entry: the job's models identity (``Config.keys``) and the code."""
    return digest({"models": models_spec, "code": code}, 24)


@dataclass
class Made:
    """What the stages that make a job's models left: their records, in order (the
    baseline's first), and the variants' files (``{variant: path}``, the Keras model under
    ``keras``)."""

    records: list[Record]
    paths: dict[str, Path]
    run_id: str = ""  # the run that made them (on an entry read back)


class ModelsCache:
    """The entry of one models key under ``<cache_dir>/models``."""

    def __init__(self, cache_dir: str | os.PathLike, key: str):
        self.key = key
        self.entry = Path(cache_dir) / "models" / key

    @contextlib.contextmanager
    def locked(self) -> Iterator[bool]:
        """The entry's lock, for the block that reads it and, on a miss, makes and saves it."""
        self.entry.parent.mkdir(parents=True, exist_ok=True)
        note = "another job is making the same models"
        with locked(self.entry.parent / f"{self.key}.lock", wait_note=note) as waited:
            yield waited

    def load(self, out: Path) -> Made | None:
        """The entry's models and records with their files put under ``out`` (where the job
        would have written them), or None: no entry, or a corrupt one (removed, said)."""
        meta_path = self.entry / META_FILE
        if not meta_path.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            files = self.entry / FILES_DIR
            for rel, sha in meta["files"].items():
                if not _safe(rel) or not (files / rel).is_file() or file_digest(files / rel) != sha:
                    raise ValueError(f"{FILES_DIR}/{rel} is missing or not what was saved")
            for rel in meta["files"]:
                _place(files / rel, out / rel)
            _linked(out, meta["files"])
            records = [_record(r, out) for r in meta["records"]]
            paths = {v: out / rel for v, rel in meta["paths"].items()}
            return Made(records, paths, meta.get("run_id", ""))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, OSError) and not _entry_fault(exc):
                raise  # a full disk under out: the job's own fault to say
            log.warning(
                "models cache entry %s is corrupt (%s): removed; made again", self.entry, exc
            )
            shutil.rmtree(self.entry, ignore_errors=True)
            return None

    def save(self, out: Path, made: Made, run_id: str) -> bool:
        """Keep ``made`` (files under ``out``) as the entry, made by run ``run_id``; False (and
        nothing written) where a record names a file outside ``out`` or a LoggedModel."""
        if any(rec.models for rec in made.records):
            return False
        out = out.resolve()
        rels = {}
        for path in [p for rec in made.records for p, _ in rec.artifacts] + [*made.paths.values()]:
            resolved = Path(path).resolve()
            if not resolved.is_relative_to(out):
                log.info("models not cached: %s is not under %s", path, out)
                return False
            rels[Path(path)] = resolved.relative_to(out).as_posix()
        kept = set(rels.values())
        try:
            with written_whole(self.entry) as tmp:
                for rel in kept:
                    _place(out / rel, tmp / FILES_DIR / rel)
                _linked(out, kept)
                files = {rel: file_digest(tmp / FILES_DIR / rel) for rel in kept}
                meta = {
                    "run_id": run_id,
                    "records": [_plain(rec, rels) for rec in made.records],
                    "paths": {v: rels[Path(p)] for v, p in made.paths.items()},
                    "files": files,
                }
                (tmp / META_FILE).write_text(json.dumps(meta, indent=1, default=_number))
        except (OSError, TypeError, ValueError) as exc:
            if isinstance(exc, OSError) and not _entry_fault(exc):
                raise  # a full disk: the job's fault to say, as anywhere else
            log.warning("models not cached (the run goes on): %s", exc)
            return False
        return True


def detach(out: Path) -> None:
    """Make each file of ``out`` linked with an entry (by :meth:`ModelsCache.load` or
    :meth:`ModelsCache.save`, listed in ``out``'s :data:`LINKS_FILE`) a file of its own, same
    bytes: the stages about to write into ``out`` rewrite files in place, which would rewrite
    the entry's too."""
    links = out / LINKS_FILE
    if not links.is_file():
        return
    for rel in links.read_text().splitlines():
        path = out / rel
        if _safe(rel) and not path.is_symlink() and path.is_file() and path.stat().st_nlink > 1:
            own = path.with_name(f".{path.name}.own")
            shutil.copyfile(path, own)
            os.replace(own, path)
    links.unlink()


def _linked(out: Path, rels) -> None:
    with open(out / LINKS_FILE, "a") as fh:
        fh.writelines(f"{rel}\n" for rel in rels)


def _safe(rel: str) -> bool:
    """A path relative to a folder that stays in it."""
    parts = Path(rel).parts
    return bool(parts) and not Path(rel).is_absolute() and ".." not in parts


def _entry_fault(exc: OSError) -> bool:
    """Whether ``exc`` is the entry's own fault (not whole, not placed), rather than that the
    disk takes nothing (full: :func:`~pruneflow.tracking.store.no_space`; read-only,
    forbidden): that is the job's to say."""
    return not no_space(exc) and exc.errno not in (errno.EROFS, errno.EACCES)


def _place(src: Path, dst: Path) -> None:
    """``dst`` as the file ``src``: a hard link where both are on one file system (no space
    taken), else a copy; an existing ``dst`` is replaced."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _number(value):
    """A numpy number as the Python number it holds (JSON has no numpy types)."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} {value!r} is not a number JSON can hold")


def _plain(rec: Record, rels: dict[Path, str]) -> dict:
    return {
        "metrics": rec.metrics,
        "tags": {k: str(v) for k, v in rec.tags.items()},
        "steps": {str(step): values for step, values in rec.steps.items()},
        "artifacts": [[rels[Path(p)], folder] for p, folder in rec.artifacts],
    }


def _record(plain: dict, out: Path) -> Record:
    return Record(
        metrics=dict(plain["metrics"]),
        tags=dict(plain["tags"]),
        steps={int(step): dict(values) for step, values in plain["steps"].items()},
        artifacts=[(out / rel, folder) for rel, folder in plain["artifacts"]],
    )
