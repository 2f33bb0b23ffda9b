"""What a command shows and what it logs: its own lines on the terminal, the libraries' in a file.

The command line is the application edge, so this is where logging and warnings are configured
(never at import of a library module). `home_log()`, around every command in sote_risk.cli.main, sends
every log record (MLflow's INFO and WARNING lines, alembic and SQLAlchemy warnings, our own
libraries' notes) and every Python warning (pandas, numpy, shap, ...) to the home folder's log,
<home>/logs/sote-risk.log. The file is opened, and its folder created, when the first record
arrives, so `--help`, `version` or a command that logs nothing leave no file behind.

MLflow installs its own stderr handler when it is first imported unless MLFLOW_CONFIGURE_LOGGING
is false, so the variable is set here (the user's own value wins); MLflow's bare prints
("Successfully registered model ...") become records in models/registry.py configure_tracking,
and MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT keeps a tracking server's run links off stdout.
A program the command line starts or becomes (the BentoML service behind `serve`, the demo's
children) gets `user_environment()` (`restore_environment()` before an exec): the variables as the user set them, so the service keeps
its own logging.

What reaches the log: library messages (model names, versions, paths, warnings with the line of
code they came from) and tracebacks of unexpected errors. Nothing here logs data rows; customers
appear only as pseudonyms, as everywhere else.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

LOG_NAME = "sote-risk.log"
FORMAT = "%(asctime)s pid %(process)d %(levelname)s %(name)s: %(message)s"

# What the command line sets for the libraries it uses; a value the user set is left alone.
ENVIRONMENT = {"MLFLOW_CONFIGURE_LOGGING": "false", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
# Loggers that say too much at INFO: SQLAlchemy's engine logs every statement, alembic every
# migration of a new MLflow database (MLflow itself keeps both at WARNING), httpx every request
# (the demo polls its children).
WARNING_ONLY = ("sqlalchemy", "alembic", "huey", "httpx", "httpcore", "urllib3", "matplotlib", "numba", "PIL")

_user_values: dict[str, str | None] = {}


class HomeLogHandler(logging.FileHandler):
    """Appends to the home folder's log, opening it (and creating its folder) at the first record.

    The first line a process writes names its command, so the lines of concurrent commands (the
    demo and the service it starts) can be told apart together with the pid of every line.
    """

    def __init__(self, path: Path, command: str) -> None:
        super().__init__(path, mode="a", encoding="utf-8", delay=True)
        self.setFormatter(logging.Formatter(FORMAT))
        self.command = command

    def _open(self):  # noqa: ANN202 (logging's own signature)
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        stream = super()._open()
        stream.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()} command: sote-risk {self.command}\n")
        return stream


def command_words(argv: list[str]) -> str:
    """The command a process runs, as far as it names no value: `models list`, `train`, `run`."""
    words = []
    for arg in argv:
        if arg.startswith("-") or len(words) == 2 or not arg.replace("-", "").isalpha():
            break
        words.append(arg)
    return " ".join(words) or "(no command)"


@contextmanager
def home_log(argv: list[str] | None = None) -> Iterator[Path | None]:
    """While a command runs: log records and warnings to the home folder's log. Yields the log's
    path (None when the settings cannot name a home: the command then fails with its own one-line
    error). Afterwards the process is as before (tests run the command line in-process)."""
    from base.errors import SoteRiskError
    from base.settings import settings

    _user_values.clear()
    _user_values.update({name: os.environ.get(name) for name in ENVIRONMENT})
    for name, value in ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    root = logging.getLogger()
    level, handler, quieted = root.level, None, {}
    try:
        path = (settings().layout.logs / LOG_NAME).absolute()
    except SoteRiskError:
        path = None
    try:
        if path is not None:
            handler = HomeLogHandler(path, command_words(sys.argv[1:] if argv is None else argv))
            root.addHandler(handler)
            root.setLevel(logging.INFO)
            for name in WARNING_ONLY:
                quieted[name] = logging.getLogger(name).level
                logging.getLogger(name).setLevel(logging.WARNING)
            logging.captureWarnings(True)  # warnings.warn -> the `py.warnings` logger -> the file (once per place, as usual)
        yield path
    finally:
        if handler is not None:
            logging.captureWarnings(False)
            root.removeHandler(handler)
            handler.close()
            root.setLevel(level)
            for name, was in quieted.items():
                logging.getLogger(name).setLevel(was)
        restore_environment()
        _user_values.clear()


def restore_environment() -> None:
    """Undo what home_log() set in os.environ: before a program that keeps its own logging
    replaces this process (`serve` execs BentoML)."""
    for name, value in _user_values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def user_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment with what home_log() set undone: for a child that sets up its own logging."""
    env = dict(os.environ if environ is None else environ)
    for name, value in _user_values.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def echo_logger(name: str) -> None:
    """Also show one of our own loggers on the terminal (stderr), for a long-running command whose
    log lines are its output (`alerts dispatch`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
