"""The images of a ``dataset=folder`` root, found by one walk (:func:`scan`) that the check,
the loader and the job key all use, so what is checked is what is loaded and what is keyed.

A user's folder is input: the walk reads it and never changes it. Links are followed only
inside the root, and each real folder is read once: a link out of the root, a link that leads
back to a folder it is in (a loop: ``loopcls -> .``, ``cat/up -> ..``), a folder reached a
second time (``cat2 -> cat``) and a link to an image that is not there are refused in one line
naming the link (:class:`~pruneflow.errors.ArgumentError` on ``root``), before any training. The
same image file reached twice (two links, a hard link: one device and inode) is kept, once per
place it was found, and every copy goes into the split of its first copy in the shuffled order,
so that no image is both trained on and validated on. No TensorFlow here: the config's check
runs it before any work.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

import numpy as np

from pruneflow.errors import ArgumentError

# What keras.utils.image_dataset_from_directory reads (the formats TensorFlow decodes).
SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")


@dataclass(frozen=True)
class Image:
    """An image file as found under the root: its path there (through links), its label."""

    path: str  # root/<class>/.../<name>, as found (links not resolved)
    label: int
    identity: tuple[int, int]  # (device, inode) of the real file: one per file, links or not
    size: int
    mtime_ns: int


@dataclass
class Folder:
    """A folder dataset's classes (sub-folder names, sorted) and its images, in Keras's order:
    class by class, each class's folders by path, each folder's files by name."""

    root: str
    class_names: list[str]
    images: list[Image] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """{class: number of images in it (and in the folders below it)}."""
        found = dict.fromkeys(self.class_names, 0)
        for image in self.images:
            found[self.class_names[image.label]] += 1
        return found

    def fingerprint(self) -> str:
        """:func:`fingerprint` of the images (class by class) and the class names."""
        return fingerprint(
            [(os.path.relpath(i.path, self.root), i.size, i.mtime_ns) for i in self.images],
            self.class_names,
        )

    def split(self, val_fraction: float, seed: int) -> tuple[list[Image], list[Image]]:
        """(training, validation) images: Keras's split (the list shuffled with ``seed``, the
        last ``int(val_fraction * n)`` for validation), except that every copy of one file
        goes where its first copy in the shuffled order went."""
        order = list(range(len(self.images)))
        np.random.RandomState(seed).shuffle(order)
        n_train = len(order) - int(val_fraction * len(order))
        where: dict[tuple[int, int], bool] = {}  # identity: in validation
        train, val = [], []
        for place, i in enumerate(order):
            image = self.images[i]
            in_val = where.setdefault(image.identity, place >= n_train)
            (val if in_val else train).append(image)
        return train, val

    def duplicates(self) -> int:
        """How many images are another place's file again (links, hard links)."""
        return len(self.images) - len({image.identity for image in self.images})


def fingerprint(files: list[tuple[str, int, int]], *extra) -> str:
    """A hash of files' (path relative to the dataset's folder, size, modification time in
    ns) and of ``extra``: a file added, removed, renamed, rewritten or touched changes it. Read
    from the file system's metadata only (no file is opened), so thousands of files cost
    milliseconds, where hashing their bytes would read the whole dataset every time a job key
    is made; a copy that does not keep times (``cp -r``) changes it too, which only runs the
    work again."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr(extra).encode())
    for rel, size, mtime_ns in files:
        h.update(f"{rel}\0{size}\0{mtime_ns}\n".encode())
    return h.hexdigest()


def tree_fingerprint(path: str) -> str | None:
    """:func:`fingerprint` of every file below ``path`` (links not followed), sorted by path;
    None where there is no such folder."""
    if not os.path.isdir(path):
        return None
    files = []
    for dirpath, dirs, names in os.walk(path):
        dirs.sort()
        for name in names:
            full = os.path.join(dirpath, name)
            stat = os.lstat(full)
            files.append((os.path.relpath(full, path), stat.st_size, stat.st_mtime_ns))
    return fingerprint(sorted(files))


def _refuse(root: str, why: str) -> None:
    raise ArgumentError("root", root, f"a folder of <class>/<image> files; {why}")


def _inside(real: str, root_real: str) -> bool:
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


def scan(root: str) -> Folder:
    """The classes and images of ``root`` (``~`` expanded), walked as described above.
    Raises :class:`ArgumentError` for ``root`` on a loop or a link out of the root."""
    top = os.path.expanduser(root)
    top_real = os.path.realpath(top)
    seen: dict[str, str] = {}  # real folder: where it was first found
    classes = []
    for name in sorted(os.listdir(top)):
        path = os.path.join(top, name)
        if not name.startswith(".") and os.path.isdir(path):
            classes.append(name)
    folder = Folder(top, classes)
    for label, name in enumerate(classes):
        found: list[tuple[str, list[os.DirEntry]]] = []
        _walk(root, os.path.join(top, name), top_real, (top_real,), seen, found)
        for _, files in sorted(found, key=lambda item: item[0]):
            for entry in sorted(files, key=lambda e: e.name):
                stat = entry.stat()
                folder.images.append(
                    Image(
                        entry.path,
                        label,
                        (stat.st_dev, stat.st_ino),
                        stat.st_size,
                        stat.st_mtime_ns,
                    )
                )
    return folder


def _walk(
    root: str,
    path: str,
    top_real: str,
    ancestors: tuple[str, ...],
    seen: dict[str, str],
    found: list,
) -> None:
    """Add (``path``, its image files) and those of every folder below it to ``found``."""
    real = os.path.realpath(path)
    if not _inside(real, top_real):
        _refuse(root, f"{path} is a link out of it (to {real}); links are followed only inside")
    if real in ancestors:
        _refuse(root, f"{path} is a link loop: it leads back to {real}, a folder it is in")
    if real in seen:
        _refuse(
            root,
            f"{path} leads to the folder {seen[real]} again (a link); each folder is read once",
        )
    seen[real] = path
    files, below = [], []
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.is_dir():  # follows a link: checked at the top of the walk below
                below.append(entry.path)
            elif entry.name.lower().endswith(SUFFIXES):
                if entry.is_symlink():
                    target = os.path.realpath(entry.path)
                    if not _inside(target, top_real):
                        _refuse(
                            root,
                            f"{entry.path} is a link out of it (to {target}); links are "
                            "followed only inside",
                        )
                    if not os.path.exists(target):
                        _refuse(root, f"{entry.path} is a link to {target}, which does not exist")
                files.append(entry)
    found.append((path, files))
    for sub in sorted(below):
        _walk(root, sub, top_real, (*ancestors, real), seen, found)
