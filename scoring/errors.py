"""What scoring refuses, as types: the service maps each to an HTTP status (serving/), the
CLI prints its message. Each names the request field it is about, where there is one."""

from __future__ import annotations

from base.errors import SoteRiskError


class ScoringError(SoteRiskError):
    """A request scoring understood but cannot answer."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class UnknownCustomer(ScoringError):
    """No customer with this pseudonym in the held histories."""


class UnknownProblem(ScoringError):
    """No champion is served for this problem."""


class NotInCohort(ScoringError):
    """The customer is not in the problem's cohort (or not eligible for its outcome) at that time."""


class OutsideData(ScoringError):
    """A date outside the span the held histories cover."""


class ImplausibleEvent(ScoringError):
    """A posted event at a time no history holds (before 1900 or from 2100 on, as written)."""


class BadFeatureRow(ScoringError):
    """A posted feature row the model cannot read (missing features, unknown categories, text)."""


class BackendError(SoteRiskError):
    """Scoring cannot start or reload: says which problem, model or file, and why."""


class ReloadRefused(BackendError):
    """A reload refused: the running service keeps its old data and models."""
