"""The Spark engine at scale (issue 17): features (`features build --engine spark`) and the
population run (`run --engine spark`) at 1, 2 and 4 regions of a multi-region dataset, on this
machine in local mode, with the pandas engine beside them at one region.

    .venv/bin/python benchmarks/bench_spark.py --data /work/scale-data --homes /work/bench-homes \\
        --models-from /work/region-s42 [--regions eksote-42,eksote-43,eksote-44,eksote-45] [--counts 1,2,4] \\
        [--as-of 2026-12-01] [--only features|run] [--no-pandas] [--json OUT]

Every measured step is the command a user runs, as a subprocess; a sampler walks its process tree
every 0.2 s (psutil) and keeps the peak resident memory (RSS) of each part:
- driver: the CLI's Python process (Spark's driver program; the pandas engine's only process);
- JVM: Spark's driver JVM (in local mode it is also the executor);
- workers: the Python workers Spark starts (pyspark.daemon and the workers it forks), summed,
  and the largest single one. RSS counts pages a forked worker still shares with the daemon in
  both, so the sum is an upper bound.
Wall time, CPU seconds of the whole tree (each process's own, as last sampled) and the mean load
average while the step ran (the machine may be shared) go beside them.

Regions are chosen by name (`--regions`, first N for N regions): each count gets a view of the
dataset, <homes>/views/regions-N/, holding regions.json with just those regions and a symbolic
link to each region's folder, so both Spark commands read it as a dataset of N regions.

Homes (under --homes; kept between runs, so a second run only measures):
- models/: the registry of --models-from (mlflow.db, mlartifacts/) with each problem's challenger
  promoted to champion (--force where its gates refuse: the benchmark needs champions, not good
  ones); the Spark run uses it. Its champions' pipeline version must be the code's (checked).
- pandas-features/, pandas-run/ (a copy of models/ whose data/ links to the first region's
  folder): the pandas engine's one-region steps, each in its own home. The pandas run's history
  cache (<home>/cache/history-*) is cleared before it runs, as on a night with new data.
Each run goes to a fresh outbox (--db in a temporary folder), so no step is an idempotent re-run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-c", "from sote_risk.cli import main; main()"]
SAMPLE_S = 0.2
MIB = 1024 * 1024


@dataclass
class Peaks:
    """Peak RSS (MiB) of each part of a process tree, from samples every SAMPLE_S seconds."""

    driver: float = 0.0
    jvm: float = 0.0
    workers: float = 0.0  # all Python workers at one moment (daemon included)
    worker_max: float = 0.0  # the largest single Python worker
    total: float = 0.0  # the whole tree at one moment
    workers_seen: int = 0  # distinct Python worker processes
    samples: int = 0
    cpu: dict[int, float] = field(default_factory=dict)  # pid -> CPU seconds when last seen
    kind: dict[int, str] = field(default_factory=dict)  # pid -> driver, jvm, workers, other
    load: list[float] = field(default_factory=list)


def part_of(process) -> str:  # noqa: ANN001 (psutil.Process)
    try:
        cmdline = " ".join(process.cmdline())
        name = process.name()
    except Exception:  # noqa: BLE001 (gone meanwhile)
        return "gone"
    if name == "java" or "SparkSubmit" in cmdline:
        return "jvm"
    if "pyspark.daemon" in cmdline or "pyspark.worker" in cmdline or "pyspark/daemon" in cmdline:
        return "workers"
    return "other"


def sample_tree(root_pid: int, peaks: Peaks, stop: threading.Event) -> None:
    import psutil

    try:
        root = psutil.Process(root_pid)
    except psutil.NoSuchProcess:
        return
    kinds: dict[int, str] = {}
    seen_workers: set[int] = set()
    while not stop.is_set():
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        sums = {"driver": 0.0, "jvm": 0.0, "workers": 0.0, "other": 0.0}
        for process in tree:
            try:
                rss = process.memory_info().rss / MIB
                times = process.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            peaks.cpu[process.pid] = times.user + times.system
            if process.pid == root_pid:
                kind = "driver"
            else:
                kind = kinds.get(process.pid) or part_of(process)
                if kind != "other":  # a process just forked may not show its command line yet: ask again
                    kinds[process.pid] = kind
            if kind == "gone":
                continue
            peaks.kind[process.pid] = kind
            sums[kind] += rss
            if kind == "workers":
                seen_workers.add(process.pid)
                peaks.worker_max = max(peaks.worker_max, rss)
        peaks.driver = max(peaks.driver, sums["driver"])
        peaks.jvm = max(peaks.jvm, sums["jvm"])
        peaks.workers = max(peaks.workers, sums["workers"])
        peaks.total = max(peaks.total, sum(sums.values()))
        peaks.workers_seen = len(seen_workers)
        peaks.samples += 1
        peaks.load.append(os.getloadavg()[0])
        stop.wait(SAMPLE_S)


@dataclass
class Step:
    name: str
    engine: str
    regions: int
    residents: int
    customers: int
    wall_s: float
    cpu_s: float
    peaks: Peaks
    ok: bool
    note: str = ""
    stages: dict[str, float] = field(default_factory=dict)  # a run's stage seconds (summed over regions)
    cpu_split: dict[str, float] = field(default_factory=dict)  # CPU seconds by part: driver, jvm, workers

    @property
    def per_resident_us(self) -> float:
        return self.wall_s / self.residents * 1e6


def measure(name: str, engine: str, args: list[str], *, home: Path, regions: int, residents: int, customers: int,
            timeout: float = 6 * 3600) -> Step:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOTE_RISK_")}
    env.update({"SOTE_RISK_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true", "MLFLOW_DISABLE_TELEMETRY": "true"})
    print(f"[{time.strftime('%H:%M:%S')}] {name}: sote-risk {' '.join(args)}", file=sys.stderr, flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    peaks, stop = Peaks(), threading.Event()
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen([*CLI, *args], cwd=REPO, env=env, stdout=out, stderr=err)
        sampler = threading.Thread(target=sample_tree, args=(process.pid, peaks, stop), daemon=True)
        sampler.start()
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        wall = time.perf_counter() - started
        stop.set()
        sampler.join()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
        out.seek(0)
        stdout = out.read().decode(errors="replace")
    # Spark's Python workers are not waited for by the CLI's process, so rusage misses them: the
    # tree's CPU is each process's own as last sampled (the waited-for root's from rusage)
    root = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    cpu = root + sum(v for pid, v in peaks.cpu.items() if pid != process.pid)
    split = {"driver": root}
    for pid, seconds in peaks.cpu.items():
        if pid != process.pid:
            kind = peaks.kind.get(pid, "other")
            split[kind] = split.get(kind, 0.0) + seconds
    note = "" if code == 0 else f"exit {code}: {stderr.strip().splitlines()[-1] if stderr.strip() else ''}"
    if code != 0:
        print(stderr[-3000:], file=sys.stderr)
    step = Step(name, engine, regions, residents, customers, round(wall, 1), round(cpu, 1), peaks, code == 0, note,
                stage_seconds(stdout), {k: round(v, 1) for k, v in split.items()})
    print(f"    {wall:.0f} s wall, {cpu:.0f} s CPU ({', '.join(f'{k} {v:.0f}' for k, v in split.items())}); peak RSS driver {peaks.driver:.0f} MiB, JVM {peaks.jvm:.0f} MiB, "
          f"workers {peaks.workers:.0f} MiB (largest {peaks.worker_max:.0f}), tree {peaks.total:.0f} MiB"
          + (f"; FAILED {note}" if code else ""), file=sys.stderr, flush=True)
    return step


def stage_seconds(stdout: str) -> dict[str, float]:
    """A run's JSON summary (its last line): the stages' seconds, each region's summed (scoring on
    Spark is one job for every region: its time is counted once)."""
    try:
        summary = json.loads(stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {}
    parts = [r["stage_seconds"] for r in summary.get("regions", {}).values()] or [summary.get("stage_seconds", {})]
    stages: dict[str, float] = {}
    for part in parts:
        for stage, seconds in part.items():
            stages[stage] = seconds if stage.startswith("shards on Spark") else stages.get(stage, 0.0) + seconds
    return {k: round(v, 1) for k, v in stages.items()}


def cli(args: list[str], home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOTE_RISK_")}
    env.update({"SOTE_RISK_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true", "MLFLOW_DISABLE_TELEMETRY": "true"})
    return subprocess.run([*CLI, *args], cwd=REPO, env=env, capture_output=True, text=True, check=False)


# ---- set-up ----------------------------------------------------------------------------------


def dataset_view(data: Path, names: list[str], out: Path) -> Path:
    """OUT/regions.json listing just `names` (entries as in DATA's manifest) and a link to each
    region's folder: a multi-region dataset of those regions, read like any other."""
    manifest = json.loads((data / "regions.json").read_text(encoding="utf-8"))
    entries = {e["name"]: e for e in manifest["regions"]}
    missing = [n for n in names if n not in entries]
    if missing:
        raise SystemExit(f"{data}: no region(s) {', '.join(missing)} (regions: {', '.join(entries)})")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in names:
        (out / f"region={name}").symlink_to((data / f"region={name}").resolve(), target_is_directory=True)
    view = {**manifest, "regions": [entries[n] for n in names], "view_of": str(data)}
    (out / "regions.json").write_text(json.dumps(view, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return out


def models_home(source: Path, home: Path) -> dict[str, str]:
    """HOME with SOURCE's registry and each problem's challenger promoted to `champion` (forced
    past failing gates) when HOME is made; problem -> 'version (gate)', loaded as `run` loads
    them: a champion on another feature-pipeline version than this code's stops the benchmark."""
    sys.path.insert(0, str(REPO))
    from training.spec import list_problems

    if not (home / "mlflow.db").exists():
        home.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / "mlflow.db", home / "mlflow.db")
        shutil.copytree(source / "mlartifacts", home / "mlartifacts")
        for problem in list_problems():
            if cli(["promote", "--problem", problem], home).returncode != 0:
                forced = cli(["promote", "--problem", problem, "--force"], home)
                if forced.returncode != 0:
                    raise SystemExit(f"promote {problem} --force failed: {forced.stderr[-2000:]}")
    check = subprocess.run([sys.executable, "-c", (
        "import json; from features import pipeline_version; from scoring.champions import load_champions, served_problems; "
        "c = load_champions(served_problems(None), pipeline_version()); "
        "print(json.dumps({p: f'v{x.version} ({x.gate.status}, pipeline {x.model.pipeline_version[:12]})' for p, x in c.items()}))")],
        cwd=REPO, env={**os.environ, "SOTE_RISK_HOME": str(home), "MLFLOW_DISABLE_TELEMETRY": "true"},
        capture_output=True, text=True, check=False)
    if check.returncode != 0:
        raise SystemExit(f"the champions in {home} do not load on this code (pipeline version?): {check.stderr[-1500:]}")
    return json.loads(check.stdout.strip().splitlines()[-1])


def pandas_run_home(models: Path, home: Path, region: Path) -> Path:
    if not home.exists():
        home.mkdir(parents=True)
        shutil.copy2(models / "mlflow.db", home / "mlflow.db")
        shutil.copytree(models / "mlartifacts", home / "mlartifacts")
    link = home / "data"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(region.resolve(), target_is_directory=True)
    return home


# ---- report ----------------------------------------------------------------------------------


def table(steps: list[Step]) -> str:
    head = ("| step | engine | regions | residents | wall s | µs/resident | CPU s | driver MiB | JVM MiB | workers MiB "
            "(largest) | tree MiB | load |")
    lines = [head, "|" + "---|" * 12]
    for s in steps:
        load = sum(s.peaks.load) / len(s.peaks.load) if s.peaks.load else float("nan")
        workers = f"{s.peaks.workers:,.0f} ({s.peaks.worker_max:,.0f})" if s.peaks.workers else "-"
        lines.append(f"| {s.name} | {s.engine} | {s.regions} | {s.residents:,} | {s.wall_s:,.0f} | {s.per_resident_us:,.0f} | "
                     f"{s.cpu_s:,.0f} | {s.peaks.driver:,.0f} | {s.peaks.jvm:,.0f} | {workers} | {s.peaks.total:,.0f} | "
                     f"{load:.1f} |" + (f" FAILED: {s.note}" if not s.ok else ""))
    return "\n".join(lines)


def verdict(steps: list[Step]) -> list[str]:
    """The issue's target: 4 regions through features on Spark without running out of memory,
    time per resident within 2x of the pandas engine's at one region."""
    pandas = next((s for s in steps if s.name == "features" and s.engine == "pandas" and s.ok), None)
    lines = []
    for s in steps:
        if s.engine != "spark" or not pandas:
            continue
        same = next((p for p in steps if p.name == s.name and p.engine == "pandas" and p.ok), None)
        if same is None or not s.ok:
            continue
        ratio = s.per_resident_us / same.per_resident_us
        lines.append(f"{s.name}, {s.regions} region(s): {ratio:.2f}x the pandas engine's time per resident "
                     f"({'within' if ratio <= 2 else 'NOT within'} 2x)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the multi-region dataset")
    parser.add_argument("--homes", type=Path, required=True, help="where the benchmark's homes and views go")
    parser.add_argument("--models-from", type=Path, required=True, help="a home whose registry has a model per problem")
    parser.add_argument("--regions", default=None, help="comma list of region names (default: the manifest's order)")
    parser.add_argument("--counts", default="1,2,4")
    parser.add_argument("--as-of", default="2026-12-01")
    parser.add_argument("--only", choices=["features", "run"], default=None)
    parser.add_argument("--no-pandas", action="store_true")
    parser.add_argument("--master", default="local[*]")
    parser.add_argument("--shard-customers", type=int, default=None, help="passed to both Spark commands when given")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    data = args.data.resolve()
    manifest = json.loads((data / "regions.json").read_text(encoding="utf-8"))
    entries = {e["name"]: e for e in manifest["regions"]}
    names = args.regions.split(",") if args.regions else list(entries)
    counts = [int(c) for c in args.counts.split(",")]
    if max(counts) > len(names):
        raise SystemExit(f"--counts asks for {max(counts)} regions, --regions names {len(names)}")
    residents_of = {}
    customers_of = {}
    for name in names:
        meta = json.loads((data / f"region={name}" / "dataset.json").read_text(encoding="utf-8"))
        residents_of[name] = int(meta.get("residents_at_start") or meta["customers"])
        customers_of[name] = int(meta["customers"])

    homes = args.homes.resolve()
    champions = models_home(args.models_from.resolve(), homes / "models") if args.only != "features" else {}
    shard = ["--shard-customers", str(args.shard_customers)] if args.shard_customers else []
    steps: list[Step] = []
    scratch = Path(tempfile.mkdtemp(prefix="bench-spark-", dir=homes))
    try:
        for n in counts:
            chosen = names[:n]
            view = dataset_view(data, chosen, homes / "views" / f"regions-{n}")
            size = {"regions": n, "residents": sum(residents_of[r] for r in chosen),
                    "customers": sum(customers_of[r] for r in chosen)}
            if args.only in (None, "features"):
                steps.append(measure("features", "spark", ["features", "build", "--engine", "spark", "--data", str(view),
                                                           "--out", str(scratch / f"features-{n}"), "--master", args.master,
                                                           *shard], home=homes / "spark-features", **size))
                shutil.rmtree(scratch / f"features-{n}", ignore_errors=True)
            if args.only in (None, "run"):
                steps.append(measure("run", "spark", ["run", "--engine", "spark", "--data", str(view), "--as-of", args.as_of,
                                                      "--master", args.master, "--db", str(scratch / f"outbox-{n}.db"),
                                                      "--no-monitor", *shard], home=homes / "models", **size))
        if not args.no_pandas:
            first = names[0]
            size = {"regions": 1, "residents": residents_of[first], "customers": customers_of[first]}
            if args.only in (None, "features"):
                home = homes / "pandas-features"
                shutil.rmtree(home / "features", ignore_errors=True)
                steps.append(measure("features", "pandas", ["features", "build", "--data", str(data / f"region={first}"),
                                                            "--out", str(home / "features")], home=home, **size))
            if args.only in (None, "run"):
                home = pandas_run_home(homes / "models", homes / "pandas-run", data / f"region={first}")
                for cached in (home / "cache").glob("history-*"):
                    shutil.rmtree(cached, ignore_errors=True)
                steps.append(measure("run", "pandas", ["run", "--as-of", args.as_of, "--db", str(scratch / "outbox-pandas.db"),
                                                       "--no-monitor"], home=home, **size))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    report = table(steps)
    print(f"bench_spark {date.today().isoformat()} on {os.cpu_count()} cores, master {args.master}, as of {args.as_of}; "
          f"regions {', '.join(names[:max(counts)])}")
    if champions:
        print("champions: " + ", ".join(f"{p} {v}" for p, v in champions.items()))
    print(report)
    for line in verdict(steps):
        print(line)
    for s in steps:
        if s.stages:
            print(f"{s.name} ({s.engine}, {s.regions} region(s)) stages: "
                  + ", ".join(f"{k} {v:,.1f} s" for k, v in s.stages.items()))
    if args.json:
        args.json.write_text(json.dumps({"date": date.today().isoformat(), "cores": os.cpu_count(), "master": args.master,
                                         "as_of": args.as_of, "champions": champions,
                                         "steps": [{**asdict(s), "peaks": {k: v for k, v in asdict(s.peaks).items() if k not in ("load", "cpu", "kind")},
                                                    "per_resident_us": s.per_resident_us,
                                                    "mean_load": (sum(s.peaks.load) / len(s.peaks.load)) if s.peaks.load else None}
                                                   for s in steps]}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
