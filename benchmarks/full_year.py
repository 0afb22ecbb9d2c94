"""Time a full-year run of a job: landed files onward, as one single-run backfill.

Runs the job with `dagster job execute` against a fresh lake, warehouse and SQLite Dagster instance
(what `make demo` does on a first run) and reports wall time and peak memory, median of ``--repeat``.

    python -m benchmarks.full_year --job ingest_job --repeat 3      # bronze and silver
    python -m benchmarks.full_year --job lakehouse_job --repeat 3   # every asset
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lakehouse.resources import default_data_dir
from lakehouse.sources.replay import replay

PROJECT = Path(__file__).resolve().parent.parent


def run_once(job: str, landing: Path, database: Path) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as scratch:
        env = {
            **os.environ,
            "DAGSTER_HOME": scratch,
            "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true",
            "LAKEHOUSE_LANDING_URI": str(landing),
            "LAKEHOUSE_SOURCE_DATABASE": str(database),
            "LAKEHOUSE_LAKE_URI": str(Path(scratch) / "lake"),
            "LAKEHOUSE_WAREHOUSE_PATH": str(Path(scratch) / "warehouse.duckdb"),
        }
        tags = json.dumps(
            {
                "dagster/asset_partition_range_start": "2013-01-01",
                "dagster/asset_partition_range_end": "2013-12-31",
            }
        )
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "dagster",
                "job",
                "execute",
                "-m",
                "lakehouse.definitions",
                "-j",
                job,
                "-c",
                str(PROJECT / "lakehouse" / "run_config" / "quiet.yaml"),
                "--tags",
                tags,
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        elapsed = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return elapsed, peak_mib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", default="ingest_job", choices=["ingest_job", "lakehouse_job"])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data = default_data_dir()
    landing, database = data / "landing", data / "sources" / "operational.sqlite"
    from datetime import date

    replay(str(landing), database, date(2013, 1, 1), date(2013, 12, 31))
    times, peaks = zip(*(run_once(args.job, landing, database) for _ in range(args.repeat)), strict=True)
    print(f"full year, {args.job} (336,776 flights, 26,115 weather rows), {args.repeat} runs:")
    print(
        f"  wall time  median {statistics.median(times):.1f} s  (min {min(times):.1f}, max {max(times):.1f})"
    )
    print(f"  peak RSS   {max(peaks):.0f} MiB")


if __name__ == "__main__":
    main()
