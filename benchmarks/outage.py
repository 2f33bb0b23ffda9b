"""A CRM outage during a population run (issue 16's target: "a 30-minute CRM outage (receiver
down) during a population run: 0 dead letters, every alert delivered exactly once after it
returns"), end to end with real processes on loopback.

    .venv/bin/python benchmarks/outage.py --home /work/outage-home --minutes 30 [--as-of 2026-12-01]

1. Copies a finished `sote-risk demo` home (--source: data, champions, keys, the CRM webhook
   secret) to --home, with a fresh outbox and a fresh receiver store: every card the run raises is
   new, and the receiver's store holds only what this outage delivered.
2. Nothing listens on the webhook port (the CRM is down). Starts `sote-risk alerts dispatch` with
   its default backoff, lease and age settings, then `sote-risk run --as-of DATE --allow-forced`
   (as the demo does: every process has the webhook set, as in a deployment, so the run's own
   delivery attempt fails too). The outage starts when the run starts.
3. Samples the outbox every --sample-seconds while the CRM is down: cards per status, attempts,
   the last error, and when the pending cards are next due.
4. After --minutes, starts the receiver on the webhook port (the demo's way: `crm-receiver`
   with the home's webhook secret) and waits until nothing is pending (bounded).
5. Stops the dispatcher (its totals) and the receiver, then counts: dead letters, cards
   delivered, cards the receiver stored and the deliveries it saw (its own sqlite db: a repeat of
   an Idempotency-Key adds a delivery, never a row), and the time from the receiver's return to
   the last delivery.

Prints one JSON object and writes it to HOME/outage-report.json. Every process runs in its own
process group and is stopped at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sqlite3
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from alerts import outbox  # noqa: E402
from sote_risk.processes import Child, free_port, start_cli, wait_ready  # noqa: E402

MARKER = ".outage-copy"  # --replace deletes a home only when this script made it
FRESH = ("outbox.db", "crm_receiver.db")  # with their -wal and -shm files


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=Path("/work/demo-final2"), help="a finished demo home (read only)")
    parser.add_argument("--home", type=Path, default=Path("/work/outage-home"), help="the copy to run in")
    parser.add_argument("--replace", action="store_true", help="delete --home first (only a copy this script made)")
    parser.add_argument("--minutes", type=float, default=30.0, help="how long the CRM is down, from the run's start")
    parser.add_argument("--as-of", default=None, help="the run's index date (default: the demo's, from demo-summary.json)")
    parser.add_argument("--port", type=int, default=0, help="the webhook port (default: a free one)")
    parser.add_argument("--sample-seconds", type=float, default=60.0, help="how often the outbox is sampled during the outage")
    parser.add_argument("--catch-up-timeout", type=float, default=900.0, help="longest wait for the outbox to drain")
    return parser.parse_args(argv)


# --- the home -----------------------------------------------------------------------------------


def copy_home(source: Path, home: Path, *, replace: bool) -> dict:
    """The demo home copied to `home` without its outbox and receiver store; the demo's summary."""
    summary_path = source / "demo-summary.json"
    if not summary_path.exists():
        raise SystemExit(f"{source} is not a finished demo home (no demo-summary.json)")
    if home.exists():
        if not (replace and (home / MARKER).exists()):
            raise SystemExit(f"{home} exists; remove it, or pass --replace if this script made it")
        shutil.rmtree(home)
    ignored = shutil.ignore_patterns(*(f"{name}*" for name in FRESH))
    shutil.copytree(source, home, ignore=ignored)
    (home / MARKER).write_text(f"copied from {source} by benchmarks/outage.py\n")
    return json.loads(summary_path.read_text())


def environment(home: Path, problems: list[str], webhook: str) -> dict[str, str]:
    """What every child gets: this checkout's code (not whatever the venv installed), the copy as
    home, the demo's problems, the webhook, and no telemetry."""
    return {"PYTHONPATH": str(REPO), "SOTE_RISK_HOME": str(home), "SOTE_RISK_PROBLEMS": ",".join(problems),
            "SOTE_RISK_CRM_WEBHOOK_URL": webhook, "BENTOML_DO_NOT_TRACK": "true", "MLFLOW_DISABLE_TELEMETRY": "true"}


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# --- sampling the outbox --------------------------------------------------------------------------


def sample(conn: sqlite3.Connection, started: float) -> dict:
    """One look at the outbox: cards per status, attempts so far, the errors of the pending
    cards, and in how many seconds they are next due (the dispatcher's backoff)."""
    now = time.time()
    counts = outbox.status_counts(conn)
    pending = conn.execute("SELECT attempts, next_attempt_at, last_error FROM alerts WHERE status='pending'").fetchall()
    due_in = sorted(max(0.0, r["next_attempt_at"] - now) for r in pending if r["next_attempt_at"] is not None)
    errors: dict[str, int] = {}
    for r in pending:
        kind = (r["last_error"] or "none").split(":")[0]
        errors[kind] = errors.get(kind, 0) + 1
    attempts = conn.execute("SELECT COALESCE(SUM(attempts), 0), COALESCE(MAX(attempts), 0) FROM alerts").fetchone()
    return {
        "t_s": round(time.monotonic() - started, 1),
        "pending": counts.get("pending", 0), "dead": counts.get("dead", 0), "delivered": counts.get("delivered", 0),
        "other": {k: v for k, v in counts.items() if k not in ("pending", "dead", "delivered")},
        "attempts_total": int(attempts[0]), "attempts_max": int(attempts[1]),
        "pending_errors": errors,
        "next_due_in_s": _spread(due_in),
    }


def _spread(values: list[float]) -> dict | None:
    if not values:
        return None
    return {"min": round(values[0], 1), "median": round(statistics.median(values), 1), "max": round(values[-1], 1)}


def say(line: str) -> None:
    """Progress on stderr (the report is the only thing on stdout), flushed: nohup buffers."""
    print(f"{datetime.now().strftime('%H:%M:%S')} {line}", file=sys.stderr, flush=True)


def sample_until(conn: sqlite3.Connection, started: float, deadline: float, every: float, run: Child,
                 samples: list[dict]) -> None:
    """Sample every `every` seconds until `deadline` (monotonic). The run must not fail meanwhile."""
    next_at = started
    while True:
        if run.process.poll() not in (None, 0):
            raise SystemExit(f"the population run failed ({run.process.returncode}); see {run.log}")
        now = time.monotonic()
        if now >= deadline:
            return
        if now >= next_at:
            samples.append(sample(conn, started))
            s = samples[-1]
            say(f"outage t={s['t_s']:.0f}s pending={s['pending']} dead={s['dead']} delivered={s['delivered']} "
                f"attempts={s['attempts_total']} next_due={s['next_due_in_s']}")
            next_at += every
        time.sleep(min(1.0, max(0.05, min(next_at, deadline) - time.monotonic())))


def wait_drained(conn: sqlite3.Connection, started: float, timeout: float, samples: list[dict]) -> float | None:
    """Seconds from `started` until no card is pending (polled twice a second, sampled every 5 s),
    or None after `timeout`."""
    last_sample = 0.0
    while time.monotonic() - started < timeout:
        if time.monotonic() - last_sample >= 5:
            samples.append(sample(conn, started))
            last_sample = time.monotonic()
        if not outbox.status_counts(conn).get("pending", 0):
            return time.monotonic() - started
        time.sleep(0.5)
    return None


# --- the figures at the end -----------------------------------------------------------------------


def receiver_figures(store: Path) -> dict:
    """What the receiver's own store says: cards stored (one row per Idempotency-Key) and every
    delivery it answered (a repeat of a key adds to `deliveries`, not a row)."""
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        stored, deliveries, repeated, last = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(deliveries), 0), COALESCE(SUM(deliveries > 1), 0), MAX(received_at)"
            " FROM received").fetchone()
        keys = {r[0] for r in conn.execute("SELECT idempotency_key FROM received")}
        uuid_mismatch = sum(1 for key, body in conn.execute("SELECT idempotency_key, body FROM received")
                            if json.loads(body).get("uuid") != key)
    finally:
        conn.close()
    return {"stored": stored, "deliveries": deliveries, "repeats": deliveries - stored, "cards_received_more_than_once": repeated,
            "last_received_at": last, "body_uuid_not_key": uuid_mismatch, "keys": keys}


def outbox_figures(conn: sqlite3.Connection) -> dict:
    rows = conn.execute("SELECT alert_id, status, attempts, created, delivered_at FROM alerts").fetchall()
    delivered = [r for r in rows if r["status"] == "delivered"]
    attempts = [r["attempts"] for r in rows]
    return {
        "cards": len(rows), "statuses": outbox.status_counts(conn),
        "dead": sum(r["status"] == "dead" for r in rows), "delivered": len(delivered),
        "attempts": {"total": sum(attempts), "max": max(attempts, default=0),
                     "median": statistics.median(attempts) if attempts else None},
        "first_created": min((r["created"] for r in rows), default=None),
        "last_created": max((r["created"] for r in rows), default=None),
        "last_delivered_at": max((r["delivered_at"] for r in delivered), default=None),
        "ids": {r["alert_id"] for r in rows},
    }


def dispatcher_totals(log: Path) -> dict | None:
    """The counts `alerts dispatch` prints as its last line when it is stopped."""
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.startswith("{") and '"delivered"' in line:
            return json.loads(line)
    return None


def run_summary(log: Path) -> dict | None:
    """The JSON line `sote-risk run` prints at its end."""
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.startswith("{") and '"run_id"' in line:
            return json.loads(line)
    return None


def seconds_between(earlier: str | None, later: str | None) -> float | None:
    """Seconds between two ISO-8601 UTC times as the outbox and the receiver write them (whole seconds)."""
    if not earlier or not later:
        return None
    parse = lambda text: datetime.fromisoformat(text.replace("Z", "+00:00"))  # noqa: E731
    return (parse(later) - parse(earlier)).total_seconds()


def utc_now() -> str:
    return outbox.utc_iso(datetime.now(timezone.utc))


# --- the scenario ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    home = args.home.resolve()
    demo = copy_home(args.source.resolve(), home, replace=args.replace)
    as_of = args.as_of or demo["as_of"]
    port = args.port or free_port()
    if listening(port):
        raise SystemExit(f"port {port} is in use: the outage needs nothing listening on the webhook port")
    webhook = f"http://127.0.0.1:{port}/alerts"
    env = environment(home, sorted(demo["models"]), webhook)
    logs = home / "logs"
    report: dict = {"home": str(home), "source": str(args.source), "as_of": as_of, "minutes": args.minutes,
                    "webhook": webhook, "dispatch_settings": "defaults (base 2 s, cap 120 s, max age 24 h, lease 60 s, timeout 10 s)"}
    children: list[Child] = []
    conn = outbox.connect(home / "outbox.db")  # created here, so sampling can start before the run writes
    try:
        dispatcher = start_cli("dispatcher", ["alerts", "dispatch"], url="", log=logs / "outage-dispatcher.log", env=env)
        children.append(dispatcher)
        started = time.monotonic()
        report["outage_started"] = utc_now()
        run = start_cli("population run", ["run", "--as-of", as_of, "--allow-forced"], url="", log=logs / "outage-run.log", env=env)
        children.append(run)
        say(f"CRM down on {webhook}; dispatcher pid {dispatcher.pid}; run --as-of {as_of} pid {run.pid}")
        outage: list[dict] = []
        sample_until(conn, started, started + args.minutes * 60, args.sample_seconds, run, outage)
        run_seconds = _wait_run(run)
        report["run"] = {"exit": run.process.returncode, "seconds": run_seconds, "summary": run_summary(run.log)}
        outage.append(sample(conn, started))  # the state the CRM comes back to
        report["outage_samples"] = outage

        if listening(port):
            raise SystemExit(f"something else took port {port} during the outage")
        report["receiver_started"] = utc_now()
        returned = time.monotonic()
        receiver = start_cli("CRM receiver", ["crm-receiver", "--host", "127.0.0.1", "--port", str(port),
                                              "--store", str(home / "crm_receiver.db"),
                                              "--secret-file", str(home / "crm_webhook_secret")],
                             url=f"http://127.0.0.1:{port}", log=logs / "outage-receiver.log", env=env)
        children.append(receiver)
        ready_after = wait_ready(receiver, "/health", timeout=60)
        say(f"CRM back after {time.monotonic() - started:.0f} s of outage (ready {ready_after:.1f} s after start)")
        catch_up: list[dict] = []
        drained = wait_drained(conn, returned, args.catch_up_timeout, catch_up)
        report["catch_up_samples"] = catch_up
        report["catch_up"] = {"receiver_ready_s": round(ready_after, 1),
                              "drained_after_return_s": None if drained is None else round(drained, 1)}
        dispatcher.stop()  # SIGTERM: it prints its totals
        report["dispatcher_totals"] = dispatcher_totals(dispatcher.log)
        receiver.stop()
        report.update(_figures(conn, home / "crm_receiver.db", report["receiver_started"]))
    finally:
        for child in reversed(children):
            child.stop()
        conn.close()
    text = json.dumps(report, indent=2)
    (home / "outage-report.json").write_text(text + "\n")
    print(text)
    say(headline(report))


def headline(report: dict) -> str:
    """The figures the target names, on one line (for whoever polls the nohup'd run's stderr)."""
    box, crm = report["outbox"], report["receiver"]
    return (f"target met: {report['target_met']}; dead {box['dead']}, delivered {box['delivered']} of {box['cards']}, "
            f"received {crm['stored']} (deliveries {crm['deliveries']}, repeats {crm['repeats']}), "
            f"drained {report['catch_up']['drained_after_return_s']} s after the CRM returned, "
            f"{box['attempts']['total']} attempts")


def _wait_run(run: Child, timeout: float = 1800.0) -> float | None:
    """The run normally ends long before the outage does; a run longer than the outage is waited
    for (bounded), so every card has been written before the CRM returns."""
    deadline = time.monotonic() + timeout
    while run.process.poll() is None and time.monotonic() < deadline:
        time.sleep(1)
    if run.process.returncode != 0:
        raise SystemExit(f"the population run exited with {run.process.returncode}; see {run.log}")
    summary = run_summary(run.log)
    return summary["seconds"] if summary else None


def _figures(conn: sqlite3.Connection, store: Path, returned_at: str) -> dict:
    """Dead, delivered, received, repeats, and whether the receiver holds exactly the outbox's cards."""
    box, crm = outbox_figures(conn), receiver_figures(store)
    ids, keys = box.pop("ids"), crm.pop("keys")
    return {
        "outbox": box,
        "receiver": crm,
        "exactly_once": {"outbox_cards_not_received": len(ids - keys), "received_not_in_outbox": len(keys - ids),
                         "ok": ids == keys and box["dead"] == 0 and crm["repeats"] == 0 and crm["body_uuid_not_key"] == 0},
        "catch_up_from_return_s": {"last_delivered_at": seconds_between(returned_at, box["last_delivered_at"]),
                                   "last_received_at": seconds_between(returned_at, crm["last_received_at"])},
        "target_met": box["dead"] == 0 and ids == keys and box["statuses"] == {"delivered": len(ids)},
    }


if __name__ == "__main__":
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    main()
