"""Time a full-year run of a job: landed files onward, as one single-run backfill.

Runs the job with `dagster job execute` against a fresh lake, warehouse and SQLite Dagster instance
(what `make demo` does on a first run) and reports wall time and peak memory, median of ``--repeat``.
The measuring is `benchmarks/run.py`'s.

    python -m benchmarks.full_year --job ingest_job --repeat 3      # bronze and silver
    python -m benchmarks.full_year --job lakehouse_job --repeat 3   # every asset
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from datetime import date
from pathlib import Path

from benchmarks.run import job, stores, timed
from lakehouse.resources import default_data_dir
from lakehouse.sources.replay import replay

FIRST, LAST = date(2013, 1, 1), date(2013, 12, 31)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", default="ingest_job", choices=["ingest_job", "lakehouse_job"])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data = default_data_dir()
    replay(str(data / "landing"), data / "sources" / "operational.sqlite", FIRST, LAST)
    runs = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as state:
            runs.append(timed(job(args.job, FIRST, LAST), stores(data, Path(state))))
    times, peaks = zip(*runs, strict=True)
    print(f"full year, {args.job} (336,776 flights, 26,115 weather rows), {args.repeat} runs:")
    print(
        f"  wall time  median {statistics.median(times):.1f} s  (min {min(times):.1f}, max {max(times):.1f})"
    )
    print(f"  peak RSS   {max(peaks):.0f} MiB")


if __name__ == "__main__":
    main()
