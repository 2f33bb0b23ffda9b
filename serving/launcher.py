"""The server process `sote-risk serve` becomes: BentoML's `bentoml serve`, with a dead worker
noticed within a second instead of ten.

    python -m serving.launcher serve serving.service:RiskService --host ... --port ...

BentoML runs its workers under a circus arbiter that it makes with check_delay=10
(bentoml._internal.utils.circus.create_standalone_arbiter): the arbiter learns that a worker died
(OOM killer, kill -9, a crash) only at its next periodic check, so the replacement started 0-10 s
after the death, before it even began to import. BentoML has no setting for it; this wraps that
one function so the arbiter checks every RESPAWN_CHECK_SECONDS (circus's own default). A check
is a waitpid and a look at each worker's status: nothing at this rate. Everything else is
BentoML's command line, unchanged. tests/test_serving_restart.py fails if a BentoML upgrade
moves the function.
"""

from __future__ import annotations

RESPAWN_CHECK_SECONDS = 1.0


def respawn_promptly() -> None:
    """Make BentoML's arbiters check their workers every RESPAWN_CHECK_SECONDS (idempotent)."""
    from bentoml._internal.utils import circus

    make = circus.create_standalone_arbiter
    if getattr(make, "respawn_check_seconds", None) is not None:
        return

    def create_standalone_arbiter(watchers, **kwargs):  # noqa: ANN001, ANN202 (BentoML's signature)
        kwargs.setdefault("check_delay", RESPAWN_CHECK_SECONDS)
        return make(watchers, **kwargs)

    create_standalone_arbiter.respawn_check_seconds = RESPAWN_CHECK_SECONDS  # type: ignore[attr-defined]
    circus.create_standalone_arbiter = create_standalone_arbiter


def main() -> None:
    respawn_promptly()
    from bentoml_cli.cli import cli

    cli()  # reads sys.argv: `serve serving.service:RiskService ...`


if __name__ == "__main__":
    main()
