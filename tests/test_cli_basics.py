"""The CLI's own behaviour: help, version, and one-line errors for unknown commands."""

import subprocess
import sys


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from sote_risk.cli import main; main()", *args],
        capture_output=True,
        text=True,
    )


def test_unknown_command_is_a_short_error_not_a_traceback():
    result = run_cli("no-such-command")
    assert result.returncode == 2
    assert "No such command" in result.stderr
    assert "Traceback" not in result.stderr


def test_version_matches_package():
    from sote_risk import __version__

    result = run_cli("version")
    assert result.returncode == 0
    assert result.stdout.strip() == __version__
