"""Everything the project writes is its user's alone: the home folder 0700, its files 0600.

The home holds customers' histories, scores, pages, keys and the audit log; a 0644 file in a
0755 folder is readable by every local user (issue 16). One umask, set at the application edge
(the command line's main, inherited by the service and every child it starts), covers every
writer, ours and the libraries' (pandas, SQLite, MLflow, BentoML, logging), without a chmod at
each of them. A home made before this is narrowed at its root, which closes everything under it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PRIVATE_UMASK = 0o077  # files 0600, folders 0700


def current_umask() -> int:
    """The process's umask, read without changing it (Linux's /proc; elsewhere set and reset)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(PRIVATE_UMASK)
    os.umask(mask)
    return mask


def narrow_home(root: Path) -> None:
    """An existing home readable or enterable by others becomes its owner's alone (0700)."""
    try:
        info = root.stat()
    except OSError:
        return  # not made yet: the umask makes it 0700
    if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and info.st_mode & 0o077:
        root.chmod(stat.S_IMODE(info.st_mode) & ~0o077)


@contextmanager
def private_files(home: Path | None) -> Iterator[None]:
    """While a command runs: the private umask, and the home's root narrowed. Afterwards the
    umask is as before (tests run the command line in-process); a program the command execs
    (the service) keeps it."""
    previous = os.umask(PRIVATE_UMASK)
    try:
        if home is not None:
            narrow_home(home)
        yield
    finally:
        os.umask(previous)
