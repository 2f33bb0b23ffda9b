"""What a scoring process holds: the champion of every served problem and the customers'
histories, reloadable without a restart.

`load_backend` is the production wiring, with plain imports: champions by registry alias
(scoring/champions.py), histories from the home folder's dataset (scoring/history.py), the
served problems from the settings (base/settings.py) or else every problem the vocabulary
declares. Tests build a Backend from the same parts around a small simulated region.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from base.errors import SoteRiskError
from base.settings import Settings
from scoring.champions import Champion, check_champions, load_champions, served_problems
from scoring.errors import BackendError, ReloadRefused
from scoring.history import HistoryStore, check_dataset, load_history


class Backend:
    """Champions + the held histories: the only stateful object of the scoring service."""

    def __init__(
        self,
        champions: Mapping[str, Champion],
        load_history: Callable[[], HistoryStore],
        load_champions: Callable[[], Mapping[str, Champion]] | None = None,
    ) -> None:
        from features import pipeline_version

        self.pipeline_version = pipeline_version()
        check_champions(champions, self.pipeline_version)
        self.champions = dict(champions)
        self._load_history = load_history
        self._load_champions = load_champions
        self._lock = threading.Lock()
        self._history = load_history()
        self.generation = 1

    @property
    def history(self) -> HistoryStore:
        return self._history

    def reload(self) -> tuple[HistoryStore, int, float]:
        """Read the histories (and, with a champion loader, the champions: a promotion reaches a
        running service this way) again; requests keep using the old ones until both new ones are
        in. A champion that cannot be loaded refuses the whole reload (ReloadRefused), so the
        service never mixes old data with a half-loaded set of models."""
        started = time.perf_counter()
        with self._lock:
            try:
                fresh = self._load_history()
                champions = self.champions
                if self._load_champions is not None:
                    loaded = dict(self._load_champions())
                    check_champions(loaded, self.pipeline_version)
                    # The same version keeps its loaded object (and its input plans).
                    champions = {p: self.champions[p] if p in self.champions and self.champions[p].version == c.version
                                 else c for p, c in loaded.items()}
            except SoteRiskError as error:
                raise ReloadRefused(str(error)) from None
            self._history, self.champions = fresh, champions
            self.generation += 1
            return fresh, self.generation, time.perf_counter() - started


def load_backend(settings: Settings, refusal: str = "serving refuses to start") -> Backend:
    """The production backend: champions by alias, the home folder's data. Both go through the
    home's cache folder (<home>/cache): what one worker read there, the next one maps or loads
    without reading the dataset or asking MLflow again, while the dataset and the registry are
    as they were (scoring/history_cache.py, scoring/champion_record.py)."""
    from features import pipeline_version

    problems, cache = served_problems(settings.problems), settings.layout.cache
    champions = load_champions(problems, pipeline_version(), refusal, cache)
    return Backend(champions, lambda: load_history(settings.layout.data, cache),
                   load_champions=lambda: load_champions(problems, pipeline_version(), "reload refused", cache))


def check_ready(settings: Settings) -> list[str]:
    """What `sote-risk serve` checks before starting the server: champions and versions, and that
    the dataset opens and is whole (its files' footers, not the histories), so a bad set-up fails
    in a second with one line instead of workers that crash-loop behind an open port."""
    from features import pipeline_version

    # Through the cache folder: the champions it reads, the workers then load without MLflow.
    champions = load_champions(served_problems(settings.problems), pipeline_version(), cache=settings.layout.cache)
    check_dataset(settings.layout.data)
    return [f"{c.problem} v{c.version}" for c in champions.values()]


__all__ = ["Backend", "BackendError", "ReloadRefused", "check_ready", "load_backend"]
