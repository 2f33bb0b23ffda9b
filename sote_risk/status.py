"""One status line for a long step: the latest progress message on a rich status, with every
message that is not an Optuna trial's also logged above it (trials come dozens a minute)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator


@contextmanager
def status_progress(console: Any, first: str) -> Iterator[Callable[[str], None]]:
    """`with status_progress(console, "p: starting") as progress: work(progress=progress)`."""
    with console.status(first) as status:
        def progress(message: str) -> None:
            status.update(message)
            if "trial" not in message:
                console.log(message)

        yield progress
