"""The Spark session: built from typed settings, stopped by a context manager.

Local mode (`local[*]`, every core of this machine) is the default; a cluster is the same code
with `master="spark://host:7077"` (or yarn, k8s://...): nothing else changes, except that the
dataset and features folders must then be on storage every executor sees.

What the settings fix, and why:
- the driver binds to the loopback address and runs no web UI: nothing listens beyond this
  machine (a cluster's driver address is the cluster's business, so only local mode binds it);
- no package downloads (no spark.jars.packages): everything needed ships inside pyspark;
- workers run this process's Python (PYSPARK_PYTHON), which has the project's packages; the
  system python would fail at `import pandas`. In local mode they also get this code's root on
  their PYTHONPATH, so a worker imports the same sources as the driver;
- session time zone UTC: the contracts' timestamps are naive and must not shift on their way
  through the JVM;
- Spark's own output (log4j, the JVM's and Python workers' stderr) goes to a log file (the home
  folder's log on the command line) instead of the terminal.

PySpark is imported inside the functions: importing this module costs nothing and needs no Java.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from base.errors import SoteRiskError

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

JAVA_PACKAGE = "openjdk-17-jre-headless"
JAVA_MISSING = f"the Spark engine needs a Java runtime: sudo apt-get install -y {JAVA_PACKAGE}"
# The folder holding the project's top-level packages (scaleout/, features/, ...).
CODE_ROOT = Path(__file__).resolve().parents[1]


class SparkUnavailableError(SoteRiskError):
    """Spark cannot start here: no Java runtime, no pyspark, or the JVM exited at start."""


class SparkSettings(BaseModel):
    """How to start Spark. The defaults suit this 2-core machine and small local runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    master: str = Field("local[*]", description="local[*] (every core here), local[N], or a cluster URL")
    app_name: str = "sote-risk"
    driver_memory: str = Field("2g", pattern=r"^\d+[kmgt]$", description="JVM heap of the driver (in local mode also "
                               "the executors'); the feature work runs in Python workers outside it")
    # Spark's default of 200 suits a cluster's big shuffles; ours move a few region's rows
    # grouped by a handful of customer shards, where 200 would be 200 near-empty tasks.
    shuffle_partitions: int = Field(8, ge=1, le=100_000)
    python: str = Field(default_factory=lambda: sys.executable, description="the Python of driver and workers")
    log_file: Path | None = Field(None, description="where Spark's own output goes; None: inherited (the terminal)")
    local_dir: Path | None = Field(None, description="Spark's scratch space (spark.local.dir); None: the system temp folder")

    @property
    def local(self) -> bool:
        return self.master.startswith("local")


def java_available() -> bool:
    """A `java` on PATH or under JAVA_HOME."""
    home = os.environ.get("JAVA_HOME")
    if home and os.access(Path(home) / "bin" / "java", os.X_OK):
        return True
    return shutil.which("java") is not None


def require_java() -> None:
    """Fail with the one line that says what to install (commands call it before any work)."""
    if not java_available():
        raise SparkUnavailableError(JAVA_MISSING)


def spark_conf(settings: SparkSettings) -> dict[str, str]:
    """The Spark configuration the settings stand for (pure, so tests can read it)."""
    conf = {
        "spark.master": settings.master,
        "spark.app.name": settings.app_name,
        "spark.driver.memory": settings.driver_memory,
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # region names are strings ("eksote-42"); never let a name such as "2024" become a number
        "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
        "spark.pyspark.python": settings.python,
        "spark.pyspark.driver.python": settings.python,
        "spark.executorEnv.PYSPARK_PYTHON": settings.python,
    }
    if settings.local:
        conf["spark.driver.host"] = "127.0.0.1"
        conf["spark.driver.bindAddress"] = "127.0.0.1"
        python_path = os.pathsep.join(p for p in (str(CODE_ROOT), os.environ.get("PYTHONPATH", "")) if p)
        conf["spark.executorEnv.PYTHONPATH"] = python_path
    if settings.local_dir is not None:
        conf["spark.local.dir"] = str(settings.local_dir)
    return conf


def start_session(settings: SparkSettings | None = None) -> "SparkSession":
    """Start (or join) the process's Spark session. One line of SparkUnavailableError, never a
    Py4J trace, when Java or pyspark is missing or the JVM does not come up."""
    settings = settings or SparkSettings()
    require_java()
    try:
        from pyspark import SparkConf, SparkContext
        from pyspark.java_gateway import launch_gateway
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailableError("the Spark engine needs pyspark: run bin/bootstrap (it installs requirements.lock)") from None

    # SparkContext reads the workers' Python from the environment, not from its conf.
    os.environ["PYSPARK_PYTHON"] = settings.python
    os.environ["PYSPARK_DRIVER_PYTHON"] = settings.python
    conf = SparkConf(loadDefaults=False).setAll(list(spark_conf(settings).items()))
    gateway = None
    if SparkContext._gateway is None:  # noqa: SLF001 (the JVM is started once per process; later sessions reuse it)
        gateway = _launch(launch_gateway, conf, settings.log_file)
    try:
        context = SparkContext.getOrCreate(conf) if gateway is None else SparkContext(conf=conf, gateway=gateway)
        context.setLogLevel("WARN")
        return SparkSession(context)
    except Exception as error:  # noqa: BLE001 (Py4J and Spark raise many types; the trace goes to the log)
        where = f" (see {settings.log_file})" if settings.log_file else ""
        raise SparkUnavailableError(f"Spark did not start at {settings.master}: {_first_line(error)}{where}") from error


def _launch(launch_gateway, conf, log_file: Path | None):  # noqa: ANN001, ANN202 (pyspark's types, imported lazily)
    """Start the JVM with its stdout and stderr (log4j's console, the Python workers' stderr) in
    log_file; the file stays open in the child only."""
    if log_file is None:
        kwargs = None
    else:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handle = open(log_file, "ab")  # noqa: SIM115 (the child keeps its own copy of the descriptor)
        kwargs = {"stdout": handle, "stderr": handle}
    try:
        return launch_gateway(conf, popen_kwargs=kwargs)
    except Exception as error:  # noqa: BLE001 (PySparkRuntimeError JAVA_GATEWAY_EXITED and friends)
        where = f" (see {log_file})" if log_file else ""
        raise SparkUnavailableError(f"the Spark JVM did not start: {_first_line(error)}{where}") from error
    finally:
        if log_file is not None:
            handle.close()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@contextmanager
def spark_session(settings: SparkSettings | None = None) -> Iterator["SparkSession"]:
    """A Spark session for the block; stopped afterwards (its JVM stays for the process's next one)."""
    spark = start_session(settings)
    try:
        yield spark
    finally:
        spark.stop()
