"""The held histories' arrays, written once per dataset and memory-mapped by every later worker.

Building a region's features.History from its Parquet dataset is most of a serving worker's start
(reading ~14 M events, looking codes up, sorting: 10-15 s at the region's size), yet the arrays
follow only from the dataset's files and the code that builds them. The first worker to load a
dataset writes them as .npy files to <home>/cache/history-<key>/; a later one (the replacement of
a killed worker, a reload of unchanged data) maps them read-only with np.load(mmap_mode="r"):
nothing is read until touched, and all workers share one copy of the pages in the page cache.

The key is a hash of everything the arrays follow from: each dataset file's identity (device,
inode, size, and its mtime and ctime in ns: rewriting or replacing a file changes them), the
code and category lists the arrays hold positions in, and the source of the code that builds
them. A changed dataset therefore never meets old arrays: it has another key, its first load
writes its own, and the others are removed. Anything wrong with a cached folder (missing,
truncated, inconsistent) makes it a miss: the dataset is read as before.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import fields
from pathlib import Path

import numpy as np

from base.atomic import atomic_directory
from base.errors import SoteRiskError
from base.private import PRIVATE_UMASK
from features import History

FORMAT = 1
PREFIX = "history-"
DATASET_FILES = ("dataset.json", "customers.parquet", "events.parquet")
ARRAYS = tuple(f.name for f in fields(History) if f.name not in ("time_min", "time_max"))
CUSTOMER_ARRAYS = ("subject_ids", "birth_month_index", "sex", "municipality", "language")
LEFTOVER_SECONDS = 600  # a temporary folder this old is a writer's that was killed, not one writing now

log = logging.getLogger("sote_risk.scoring")


def dataset_key(folder: Path) -> str | None:
    """The cache key of a Parquet dataset folder's histories (None: not a Parquet dataset)."""
    from features import history as builder
    from features.catalogue import LANGUAGES, MUNICIPALITIES, SEXES
    from scoring import history as reader

    identity = []
    for name in DATASET_FILES:
        try:
            info = (Path(folder) / name).stat()
        except OSError:
            return None
        identity.append([name, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns])
    digest = hashlib.sha256(json.dumps({
        "format": FORMAT, "files": identity, "codes": list(builder.code_list()),
        "categories": [list(SEXES), list(MUNICIPALITIES), list(LANGUAGES)],
    }).encode())
    for source in (builder.__file__, reader.__file__, __file__):  # the code that builds and caches the arrays
        digest.update(Path(source).read_bytes())
    return digest.hexdigest()[:32]


def read_cached(root: Path, key: str) -> History | None:
    """The arrays cached under `key`, mapped read-only; None when there are none or they do not
    hold together (the caller then reads the dataset)."""
    folder = Path(root) / f"{PREFIX}{key}"
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        if meta.get("key") != key or meta.get("format") != FORMAT:
            return None
        # A plain ndarray view of each map: the map stays open as its base, and is not writable.
        arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False).view(np.ndarray) for name in ARRAYS}
    except (OSError, ValueError) as error:
        if not isinstance(error, FileNotFoundError):
            log.warning("history cache %s unreadable (%s): reading the dataset", folder, error)
        return None
    customers, events = len(arrays["subject_ids"]), len(arrays["time"])
    whole = (
        all(arrays[name].dtype.str == meta["dtypes"][name] for name in ARRAYS)
        and all(len(arrays[name]) == customers for name in CUSTOMER_ARRAYS)
        and all(len(arrays[name]) == events for name in ARRAYS if name not in CUSTOMER_ARRAYS and name != "ptr")
        and len(arrays["ptr"]) == customers + 1 and (customers == 0 or (arrays["ptr"][0] == 0 and arrays["ptr"][-1] == events))
        and (customers, events) == (meta["customers"], meta["events"])
    )
    if not whole:
        log.warning("history cache %s does not hold together: reading the dataset", folder)
        return None
    return History(**arrays, time_min=int(meta["time_min"]), time_max=int(meta["time_max"]))


def write_cached(root: Path, key: str, history: History) -> History | None:
    """Write the arrays under `key` (whole or not at all, the owner's alone), remove the caches
    of other datasets, and return the written arrays mapped; None if it cannot be written (the
    caller keeps what it built: a full disk costs start-up time, never an answer)."""
    root = Path(root)
    target = root / f"{PREFIX}{key}"
    if target.exists() and (written := read_cached(root, key)) is not None:
        return written  # another worker wrote it meanwhile: map the same pages
    try:
        root.mkdir(mode=0o777 & ~PRIVATE_UMASK, parents=True, exist_ok=True)
        _remove_leftovers(root)
        with atomic_directory(target, overwrite=True) as tmp:
            tmp.chmod(0o777 & ~PRIVATE_UMASK)  # before anything is in it: histories are personal data
            for name in ARRAYS:
                np.save(tmp / f"{name}.npy", np.ascontiguousarray(getattr(history, name)), allow_pickle=False)
            meta = {"format": FORMAT, "key": key, "customers": history.n_customers, "events": history.n_events,
                    "time_min": history.time_min, "time_max": history.time_max,
                    "dtypes": {name: getattr(history, name).dtype.str for name in ARRAYS}}
            (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
            for path in tmp.iterdir():
                path.chmod(0o666 & ~PRIVATE_UMASK)
    except (OSError, SoteRiskError) as error:
        log.warning("history cache not written to %s (%s): each worker reads the dataset", target, error)
        return None
    for other in root.glob(f"{PREFIX}*"):
        if other != target:  # another dataset's: a worker that still maps it keeps its pages until it lets go
            shutil.rmtree(other, ignore_errors=True)
    return read_cached(root, key)


def _remove_leftovers(root: Path) -> None:
    """Temporary and set-aside folders of writers killed mid-write (atomic_directory's names)."""
    now = time.time()
    for path in root.glob(f".{PREFIX}*"):
        try:
            if now - path.stat().st_mtime > LEFTOVER_SECONDS:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue
