"""`alerts dispatch` stops on SIGTERM, however many arrive and however fast (issue 16, item 15).

A real dispatcher process, idle in its poll wait, gets a burst of SIGTERMs. A handler that takes
a lock (threading.Event.set) can deadlock when a second signal lands while the first handler
holds it; a handler that only sets a flag cannot. The wait is bounded (generous) and nothing
about speed is asserted beyond that bound.
"""

import json
import os
import signal
import subprocess
import time

import pytest

from _alerts_helpers import cli, free_port, stop, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

BURST = 2000  # signals sent back to back: each one lands somewhere in the handler of the one before


def test_a_burst_of_sigterm_mid_wait_stops_the_dispatcher(tmp_path):
    env = {"SOTE_RISK_HOME": str(tmp_path / "home"), "SOTE_RISK_OPERATOR_WEBHOOK_URL": ""}  # empty: unset
    process = cli("alerts", "dispatch", "--db", str(tmp_path / "outbox.db"),
                  "--webhook", f"http://127.0.0.1:{free_port()}/alerts", "--poll-interval", "1",
                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: (tmp_path / "outbox.db").exists() or process.poll() is not None, timeout=60,
                   what="the dispatcher to open its outbox")
        time.sleep(1.0)  # into its idle poll wait (nothing is pending)
        for _ in range(BURST):
            try:
                os.kill(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                break
        out, err = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("the dispatcher did not exit within 20 s of a burst of SIGTERM (deadlocked in its handler?)")
    finally:
        stop(process)
    assert process.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1]) == {
        "delivered": 0, "retrying": 0, "dead": 0, "released": 0,
        "operator": {"delivered": 0, "retrying": 0, "dead": 0, "waiting": 0,
                     "skipped": "SOTE_RISK_OPERATOR_WEBHOOK_URL is not set: operator alerts wait in the outbox"}}


def test_the_installed_handler_survives_a_second_signal_landing_anywhere_inside_it(monkeypatch, tmp_path):
    """Deterministic version of the race: the `dispatch` command's own SIGTERM handler is run
    with a second call injected after every call it makes (as a signal landing between
    bytecodes would run it). A handler that holds a lock when that happens never returns."""
    import threading

    from alerts import dispatcher
    from sote_risk.cli import main

    installed, outcome = {}, {}
    monkeypatch.setattr(signal, "signal", lambda sig, handler: installed.setdefault(sig, handler))

    def fake_loop(conn, config, *, stop, **_):
        handler = installed[signal.SIGTERM]
        worker = threading.Thread(target=_with_a_second_signal_everywhere, args=(handler,), daemon=True)
        worker.start()
        worker.join(10)
        outcome.update(returned=not worker.is_alive(), stopped=stop.is_set())
        return dispatcher.PassCounts()

    monkeypatch.setattr(dispatcher, "run_loop", fake_loop)
    monkeypatch.setenv("SOTE_RISK_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("sys.argv", ["sote-risk", "alerts", "dispatch", "--db", str(tmp_path / "outbox.db"),
                                     "--webhook", "http://127.0.0.1:9/alerts"])
    try:
        main()
    except SystemExit as exit_:
        assert not exit_.code
    assert outcome == {"returned": True, "stopped": True}, "the handler deadlocked on a second signal"


def _with_a_second_signal_everywhere(handler) -> None:
    import sys

    nested = [False]

    def profile(frame, event, arg):  # noqa: ARG001
        if event in ("c_return", "return") and not nested[0]:
            nested[0] = True
            try:
                handler(signal.SIGTERM, None)
            finally:
                nested[0] = False

    sys.setprofile(profile)
    try:
        handler(signal.SIGTERM, None)
    finally:
        sys.setprofile(None)
