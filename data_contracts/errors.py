"""Contract failures: what broke, where, and one compact message for all of them.

Every validator collects `Failure`s first and raises once, so a user sees every broken rule of a
table in one run instead of fixing them one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from base.errors import SoteRiskError

MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Failure:
    """One broken rule: the table and column, the rule in words, and the offending rows.

    `rows` are positions (0-based row numbers in the frame as given, not index labels), so a
    message points at the same row whatever index the caller's frame carried. `n_rows` counts all
    offenders; `rows`/`subject_ids` keep only the first few examples. Table-level failures (a
    missing column, a wrong dtype) have no rows and say what was found in `detail`.
    """

    table: str
    column: str
    rule: str
    n_rows: int = 0
    rows: tuple[int, ...] = ()
    subject_ids: tuple[int | None, ...] = ()
    detail: str = ""

    def line(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        text = f"{where}: {self.rule}"
        if self.detail:
            text += f" ({self.detail})"
        if self.n_rows:
            examples = ", ".join(
                f"row {row}" + (f" (subject_id {sid})" if sid is not None else "")
                for row, sid in zip(self.rows, self.subject_ids)
            )
            more = f", ... {self.n_rows - len(self.rows)} more" if self.n_rows > len(self.rows) else ""
            plural = "row" if self.n_rows == 1 else "rows"
            text += f": {self.n_rows} {plural}: {examples}{more}"
        return text


def failure_at(
    table: str,
    column: str,
    rule: str,
    positions: np.ndarray,
    subject_ids: np.ndarray | None = None,
) -> Failure:
    """A row-level failure from all offending positions (only the first few are kept)."""
    positions = np.asarray(positions)
    first = positions[:MAX_EXAMPLES]
    sids: tuple[int | None, ...]
    if subject_ids is None:
        sids = (None,) * len(first)
    else:
        sids = tuple(int(s) for s in np.asarray(subject_ids)[first])
    return Failure(table, column, rule, int(len(positions)), tuple(int(p) for p in first), sids)


class ContractError(SoteRiskError):
    """Data broke the contracts. The message has one line per broken rule, with example rows."""

    def __init__(self, message: str, failures: Sequence[Failure] = ()) -> None:
        super().__init__(message)
        self.failures: tuple[Failure, ...] = tuple(failures)

    @classmethod
    def from_failures(cls, failures: Sequence[Failure]) -> "ContractError":
        tables = sorted({f.table for f in failures})
        head = f"{len(failures)} contract rule(s) broken in {', '.join(tables)}"
        return cls("\n".join([head, *("  " + f.line() for f in failures)]), failures)


def raise_if_any(failures: Sequence[Failure]) -> None:
    if failures:
        raise ContractError.from_failures(failures)

