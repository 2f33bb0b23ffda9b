"""Write a whole output folder or file, or nothing: a temporary sibling renamed into place.

Every command that writes a folder (simulate, meds export/import, features build) goes through
here, so bad output paths get the same one-line errors and a failure never leaves a
half-written folder behind; small files (keys, the serving generation, logs) go through
atomic_write_text, and single files of other kinds (test-period predictions) through atomic_file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from base.errors import SoteRiskError
from base.private import current_umask


class OutputError(SoteRiskError):
    """The output folder cannot be used."""


def check_output(out: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Refuse a folder that exists and is not empty (unless overwrite), is a file, or cannot be written.

    Cheap, so commands call it before spending minutes on the work.
    """
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: exists and is not a folder")
    if path.is_dir() and not overwrite and any(path.iterdir()):
        raise OutputError(f"{path}: already exists and is not empty (choose a new folder)")
    probe = path.resolve().parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: cannot write there ({probe} is not writable)")
    return path


@contextmanager
def atomic_directory(out: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder; it replaces `out` only if the block completes.

    The temporary folder lives in out's parent so the final rename stays on one file system.
    """
    target = check_output(out, overwrite=overwrite)
    parent = target.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=parent))
        tmp.chmod(0o777 & ~current_umask())  # as mkdir would make it (mkdtemp's is always 0700)
    except OSError as error:
        raise OutputError(f"{target}: cannot write there ({error.strerror})") from None
    try:
        yield tmp
        if target.exists():
            # A rename onto a non-empty folder fails: move the old one aside first.
            old = parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str, *, mode: int | None = None) -> Path:
    """Write `text` to a temporary sibling (this process's own name), set `mode` if given, then
    rename it over `path`: a reader sees the old file or the new one, never half of one."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


@contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary sibling path (this process's own name) to write a file of any kind to
    (Parquet, say); it is renamed over `path` only if the block completes, so a reader sees the
    old file or the new one, never half of one."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
