"""``make bench``: every benchmark of the lakehouse, written to ``benchmarks/results.md``.

For each scale factor N (``benchmarks/scale.py``) it measures, each run a fresh process and each
number a median over ``--repeat`` runs with the spread:
- the full backfill, landing files to gold, 1 January to 30 December, as one ``gold_job`` run, and
  training on the result (``train_job``, one run);
- the incremental cost: one new day (31 December) on top of that year, against one new day (1 February)
  on top of January alone; the lake and warehouse are restored before every run;
- the orchestration overhead: the same backfill as a bare script of the same ``lakehouse.lib``
  functions (``benchmarks/bare.py``);
- the pandas baseline (``benchmarks/pandas_baseline.py``), against that bare Polars script.
At the first compared factor, the backfill again on PostgreSQL and with event batching (``instances``);
at ``--fanout-factor`` (10), the year as one run against the same year fanned out by Dagster's daemon into
runs of ``--backfill-days`` days, 1 and 2 at a time, contents compared (``fanout``, ``benchmarks/fanout.py``).
Then start-up (loading the definitions) and, with ``--demo``, ``make demo`` from the installed
environment into a temporary data folder.

Wall time is the whole process, start-up included; peak memory is the process's maximum resident set
(``wait4``). A benchmark that fails prints the command and the end of its output, and the run goes on.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from benchmarks import fanout, serving
from benchmarks.scale import generate

PROJECT = Path(__file__).resolve().parent.parent
FIRST, YEAR_LAST, NEW_DAY = date(2013, 1, 1), date(2013, 12, 30), date(2013, 12, 31)
MONTH_LAST, MONTH_NEW_DAY = date(2013, 1, 31), date(2013, 2, 1)


class BenchmarkFailed(RuntimeError):
    pass


@dataclass
class Result:
    name: str
    factor: int
    seconds: list[float] = field(default_factory=list)
    peaks_mib: list[float] = field(default_factory=list)
    rows: int | None = None
    failure: str | None = None

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Result:
        return cls(**data)

    def median(self) -> float:
        return statistics.median(self.seconds)

    def cells(self) -> list[str]:
        if self.failure:
            return [self.name, str(self.factor), f"did not finish: {self.failure}", "", "", ""]
        spread = f"{min(self.seconds):.1f} to {max(self.seconds):.1f}" if len(self.seconds) > 1 else "1 run"
        rate = f"{self.rows / self.median():,.0f}" if self.rows else ""
        return [
            self.name,
            str(self.factor),
            f"{self.median():.1f}",
            spread,
            rate,
            f"{max(self.peaks_mib) / 1024:.2f}",
        ]


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak resident MiB of ``command``; raises ``BenchmarkFailed`` if it fails."""
    with tempfile.TemporaryFile() as output:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, cwd=PROJECT, stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            output.seek(0)
            tail = output.read().decode(errors="replace").strip().splitlines()[-15:]
            raise BenchmarkFailed(f"{' '.join(command)} exited {process.returncode}:\n" + "\n".join(tail))
    return elapsed, usage.ru_maxrss / 1024


def stores(data: Path, state: Path) -> dict[str, str]:
    """Environment for a Dagster run over ``data``'s landing files into ``state``."""
    home = state / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT / "lakehouse" / "dagster.yaml", home / "dagster.yaml")
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")},
        "DAGSTER_HOME": str(home),
        "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true",
        "LAKEHOUSE_LANDING_URI": str(data / "landing"),
        "LAKEHOUSE_SOURCE_DATABASE": str(data / "sources" / "operational.sqlite"),
        "LAKEHOUSE_LAKE_URI": str(state / "lake"),
        "LAKEHOUSE_WAREHOUSE_PATH": str(state / "warehouse.duckdb"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{state / 'mlflow' / 'mlflow.db'}",
        "LAKEHOUSE_MLFLOW_ARTIFACTS": str(state / "mlflow" / "artifacts"),
    }


def job(name: str, first: date | None = None, last: date | None = None) -> list[str]:
    command = [sys.executable, "-m", "dagster", "job", "execute", "-m", "lakehouse.definitions", "-j", name]
    command += ["-c", str(PROJECT / "lakehouse" / "run_config" / "quiet.yaml")]
    if first:
        tags = {
            "dagster/asset_partition_range_start": str(first),
            "dagster/asset_partition_range_end": str(last),
        }
        command += ["--tags", json.dumps(tags)]
    return command


def fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def snapshot(state: Path, to: Path) -> None:
    fresh(to)
    shutil.copytree(state / "lake", to / "lake")
    shutil.copy(state / "warehouse.duckdb", to / "warehouse.duckdb")


def restore(saved: Path, state: Path) -> None:
    fresh(state)
    shutil.copytree(saved / "lake", state / "lake")
    shutil.copy(saved / "warehouse.duckdb", state / "warehouse.duckdb")


class Bench:
    def __init__(self, work: Path, repeat: int, backfill_only_from: int):
        self.work, self.repeat, self.results = work, repeat, []
        self.backfill_only_from = backfill_only_from

    def measure(self, name: str, factor: int, rows: int | None, runs: int, run) -> Result:
        """``run()`` returns (seconds, peak MiB); it is called ``runs`` times."""
        result = Result(name, factor, rows=rows)
        print(f"N={factor:<3} {name} ...", flush=True)
        try:
            for _ in range(runs):
                seconds, peak = run()
                result.seconds.append(seconds)
                result.peaks_mib.append(peak)
                print(f"        {seconds:7.1f} s  {peak:7.0f} MiB", flush=True)
        except BenchmarkFailed as error:
            result.failure = str(error).splitlines()[0][:200]
            print(f"        FAILED: {error}", flush=True)
        self.results.append(result)
        return result

    def data(self, factor: int) -> tuple[Path, int]:
        """The landing data at ``factor`` (generated once) and the flights of the backfilled days."""
        data = self.work / f"n{factor}"
        done = data / "generated.json"
        if not done.exists():
            fresh(data)
            print(f"N={factor:<3} generating landing data ...", flush=True)
            done.write_text(json.dumps(generate(data, factor, FIRST, NEW_DAY)))
        return data, round(json.loads(done.read_text())["flights"] * 364 / 365)

    def scale(self, factor: int) -> None:
        data, year_rows = self.data(factor)
        state, saved = self.work / "state", self.work / "saved"

        def backfill():
            env = stores(data, fresh(state))
            return timed(job("gold_job", FIRST, YEAR_LAST), env)

        large = factor >= self.backfill_only_from
        year = self.measure(
            "backfill to gold (364 days)", factor, year_rows, 1 if large else self.repeat, backfill
        )
        if year.failure:
            return
        self.measure(
            "train and register the model",
            factor,
            None,
            1,
            lambda: timed(job("train_job"), stores(data, state)),
        )
        if large:
            # At the largest scale the backfill and training run once; the incremental cost is N = 10's.
            return
        snapshot(state, saved)

        def new_day(day: date):
            restore(saved, state)
            return timed(job("gold_job", day, day), stores(data, state))

        self.measure("one new day on a year", factor, None, self.repeat, lambda: new_day(NEW_DAY))
        timed(job("gold_job", FIRST, MONTH_LAST), stores(data, fresh(state)))
        snapshot(state, saved)
        self.measure("one new day on a month", factor, None, self.repeat, lambda: new_day(MONTH_NEW_DAY))

    def instances(self, factor: int) -> None:
        """The backfill again with Dagster's instance on PostgreSQL (an embedded PostgreSQL 16, pgserver,
        a new database each run, ``lakehouse/dagster_postgres.yaml``) and with event batching
        (``DAGSTER_EVENT_BATCH_SIZE``) on either instance."""
        import pgserver

        data, year_rows = self.data(factor)
        state = self.work / "state"
        server = pgserver.get_server(fresh(self.work / "postgres"), cleanup_mode="stop")
        socket_dir = server.get_uri().split("host=")[1]
        databases = iter(range(1, 1000))

        def backfill(postgres: bool, batch: int | None):
            env = stores(data, fresh(state))
            if postgres:
                database = f"dagster_{next(databases)}"
                server.psql(f"CREATE DATABASE {database};")
                shutil.copy(
                    PROJECT / "lakehouse" / "dagster_postgres.yaml",
                    Path(env["DAGSTER_HOME"]) / "dagster.yaml",
                )
                env["DAGSTER_POSTGRES_URL"] = f"postgresql+psycopg2://postgres:@/{database}?host={socket_dir}"
            if batch:
                env["DAGSTER_EVENT_BATCH_SIZE"] = str(batch)
            return timed(job("gold_job", FIRST, YEAR_LAST), env)

        try:
            for name, postgres, batch in (
                ("backfill on SQLite, events batched (364 days)", False, 100),
                ("backfill on PostgreSQL (364 days)", True, None),
                ("backfill on PostgreSQL, events batched (364 days)", True, 100),
            ):
                self.measure(name, factor, year_rows, self.repeat, lambda p=postgres, b=batch: backfill(p, b))
        finally:
            server.cleanup()

    def fanout(self, factor: int, days_per_run: int, runs_at_once: list[int], reuse: bool) -> None:
        """The year's backfill as one run, then fanned out by the daemon into runs of at most
        ``days_per_run`` days, each of ``runs_at_once`` at a time (``benchmarks/fanout.py``); a fanned-out
        backfill whose tables differ from the one run's by content counts as failed. With ``reuse``, the
        one run's tables of an earlier invocation are compared against and its time kept."""
        data, year_rows = self.data(factor)
        reference = self.work / "fanout-one-run"
        if not (reuse and (reference / "warehouse.duckdb").exists()):
            one_run = self.measure(
                "fan-out reference: the year as one run (364 days)",
                factor,
                year_rows,
                1,
                lambda: timed(job("gold_job", FIRST, YEAR_LAST), stores(data, fresh(reference))),
            )
            if one_run.failure:
                return
        expected = fanout.contents(reference)
        for at_once in runs_at_once:
            state = self.work / f"fanout-{at_once}"

            def fanned(state=state, at_once=at_once):
                env = stores(data, fresh(state)) | {"LAKEHOUSE_BACKFILL_DAYS": str(days_per_run)}
                try:
                    seconds, peak, runs = fanout.fanned_out(env, FIRST, YEAR_LAST, at_once)
                except (RuntimeError, OSError) as error:
                    raise BenchmarkFailed(str(error)) from None
                print(f"        {runs} runs", flush=True)
                differ = fanout.differences(expected, fanout.contents(state))
                if differ:
                    raise BenchmarkFailed(f"contents differ from the one run: {', '.join(differ)}")
                return seconds, peak

            self.measure(
                f"fan-out, {at_once} run{'s' if at_once > 1 else ''} at a time: runs of {days_per_run} days "
                "(364 days)",
                factor,
                year_rows,
                1,
                fanned,
            )

    def script(self, name: str, module: str, factor: int) -> None:
        """Time ``python -m module`` over the backfill's days at ``factor``."""
        data, year_rows = self.data(factor)
        state = self.work / "state"
        command = [sys.executable, "-m", module, "--data", str(data), "--through", str(YEAR_LAST)]
        self.measure(
            name,
            factor,
            year_rows,
            self.repeat,
            lambda: timed([*command, "--state", str(fresh(state))], dict(os.environ)),
        )

    def compare(self, factor: int) -> None:
        self.script("bare script, same lib functions", "benchmarks.bare", factor)
        self.script("pandas baseline (a subset of the transforms)", "benchmarks.pandas_baseline", factor)
        self.script("Polars, the pandas baseline's subset", "benchmarks.polars_subset", factor)

    def startup(self) -> None:
        command = [sys.executable, "-c", "from lakehouse.definitions import defs; defs()"]
        self.measure("load the definitions", 1, None, 5, lambda: timed(command, dict(os.environ)))

    def demo(self) -> None:
        folder = fresh(self.work / "demo")
        env = {**os.environ, "LAKEHOUSE_DATA_DIR": str(folder / "data")}
        command = ["make", "demo", f"DAGSTER_HOME={folder / 'dagster_home'}"]
        self.measure("make demo, installed environment", 1, None, 1, lambda: timed(command, env))


def find(results: list[Result], name: str, factor: int) -> Result | None:
    for result in results:
        if result.name.startswith(name) and result.factor == factor and not result.failure:
            return result
    return None


# (label, numerator, denominator, target): the numerator's median over the denominator's, by name prefix.
# A target of two words is a comparison without a target: the first when the ratio is over 1, else the
# second (the peer comparison: over 1, Polars is faster; the fan-out: over 1, it beats one run).
PEER, FAN_OUT = ("Polars faster", "pandas faster"), ("fan-out faster", "one run faster")
RATIOS = [
    ("incremental: new day on a year / on a month", "one new day on a year", "one new day on a month", 1.3),
    ("orchestration: Dagster / bare script", "backfill to gold", "bare script", 1.5),
    ("orchestration on SQLite, events batched", "backfill on SQLite, events", "bare script", 1.5),
    ("orchestration on PostgreSQL", "backfill on PostgreSQL (", "bare script", 1.3),
    ("orchestration on PostgreSQL, events batched", "backfill on PostgreSQL, events", "bare script", 1.3),
    ("peer: pandas / Polars, the same subset", "pandas baseline", "Polars, the pandas", PEER),
    ("fan-out speed-up (one run / fanned out), 1 at a time", "fan-out reference", "fan-out, 1 run", FAN_OUT),
    ("fan-out speed-up (one run / fanned out), 2 at a time", "fan-out reference", "fan-out, 2 runs", FAN_OUT),
]


def ratios(results: list[Result], factors: list[int]) -> list[list[str]]:
    rows = []
    for factor in factors:
        for label, top, bottom, target in RATIOS:
            a, b = find(results, top, factor), find(results, bottom, factor)
            if a and b:
                ratio = a.median() / b.median()
                if isinstance(target, tuple):
                    verdict, goal = (target[0] if ratio > 1 else target[1]), "> 1"
                else:
                    verdict, goal = ("holds" if ratio <= target else "misses"), f"≤ {target}"
                rows.append([label, str(factor), f"{ratio:.2f}", goal, verdict])
    for factor in factors:
        for label, name in (("the backfill", "backfill to gold"), ("training", "train and register")):
            measured = find(results, name, factor)
            if measured is not None:
                peak = max(measured.peaks_mib) / 1024
                verdict = ("holds" if peak < 4 else "misses") if factor == 100 else "(the target is at N=100)"
                rows.append(
                    [f"peak memory of {label} (GiB)", str(factor), f"{peak:.2f}", "< 4 at N=100", verdict]
                )
    return rows


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def write(results: list[Result], factors: list[int], output: Path, command: str) -> None:
    import dagster
    import deltalake
    import polars

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    machine = (
        f"{os.cpu_count()} cores, {memory:.0f} GiB, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}, dagster "
        f"{dagster.__version__}, deltalake {deltalake.__version__}, polars {polars.__version__}"
    )
    text = f"""# Benchmark results

Written by `{command}` on {date.today()}; {machine}.
Each number is the median of the runs listed, each run a fresh process; peak memory is the largest
resident set of any of its runs. Rows per second count the flights of the backfilled days.

{table(["measurement", "N", "median s", "spread s", "flights/s", "peak GiB"], [r.cells() for r in results])}

## Against the targets

{table(["ratio", "N", "measured", "target", "verdict"], ratios(results, factors))}
{serving.section()}"""
    output.write_text(text)
    print(f"\nwrote {output}")


PARTS = ["startup", "scale", "compare", "instances", "fanout", "demo"]
ORDER = [
    "load the definitions",
    "backfill to gold",
    "backfill on",
    "fan-out",
    "train and register",
    "one new day on a year",
    "one new day on a month",
    "bare script",
    "pandas baseline",
    "Polars, the pandas",
    "make demo",
]


def merged(previous: list[Result], measured: list[Result]) -> list[Result]:
    """The measurements of this invocation replace those of the same name and factor."""
    keys = {(r.name, r.factor) for r in measured}
    kept = [r for r in previous if (r.name, r.factor) not in keys] + measured

    def rank(result: Result) -> tuple[int, int]:
        position = next((i for i, prefix in enumerate(ORDER) if result.name.startswith(prefix)), len(ORDER))
        return result.factor, position

    return sorted(kept, key=rank)


def rewrite(output: Path = PROJECT / "benchmarks" / "results.md") -> None:
    """Write results.md again from the stored measurements (after the serving benchmark ran)."""
    store = output.with_suffix(".json")
    results = [Result.from_json(r) for r in json.loads(store.read_text())] if store.exists() else []
    write(results, sorted({r.factor for r in results}), output, "make bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factors", default="1,10,100", help="comma-separated scale factors (1..100)")
    parser.add_argument("--compare", default="1,10", help="factors to run the bare and pandas scripts at")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "lakehouse-bench")
    parser.add_argument("--output", type=Path, default=PROJECT / "benchmarks" / "results.md")
    parser.add_argument("--demo", action="store_true", help="also time `make demo` (about 4 minutes)")
    parser.add_argument(
        "--backfill-only-from",
        type=int,
        default=100,
        help="from this factor on, one backfill and one training run only",
    )
    parser.add_argument("--fanout-factor", type=int, default=10, help="the factor of the fan-out part")
    parser.add_argument("--backfill-days", type=int, default=91, help="the fan-out's days per run (K)")
    parser.add_argument("--runs-at-once", default="1,2", help="the fan-out's runs at a time, each measured")
    parser.add_argument(
        "--reuse-reference", action="store_true", help="compare with the fan-out's earlier one run"
    )
    parser.add_argument(
        "--only",
        default=",".join(PARTS),
        help=f"the parts to run ({', '.join(PARTS)}); others keep their numbers",
    )
    args = parser.parse_args()
    factors = [int(f) for f in args.factors.split(",")]
    compare = [int(f) for f in args.compare.split(",") if f]
    parts = set(args.only.split(","))
    bench = Bench(args.work, args.repeat, args.backfill_only_from)
    if "startup" in parts:
        bench.startup()
    for factor in factors if "scale" in parts else []:
        bench.scale(factor)
    for factor in compare if "compare" in parts else []:
        bench.compare(factor)
    for factor in compare[:1] if "instances" in parts else []:
        bench.instances(factor)
    if "fanout" in parts:
        at_once = [int(n) for n in args.runs_at_once.split(",")]
        bench.fanout(args.fanout_factor, args.backfill_days, at_once, args.reuse_reference)
    if args.demo and "demo" in parts:
        bench.demo()
    store = args.output.with_suffix(".json")
    previous = [Result.from_json(r) for r in json.loads(store.read_text())] if store.exists() else []
    results = merged(previous, bench.results)
    store.write_text(json.dumps([r.to_json() for r in results], indent=1) + "\n")
    shown = sorted({r.factor for r in results})
    write(results, shown, args.output, "make bench")


if __name__ == "__main__":
    main()
