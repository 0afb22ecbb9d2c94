"""The request log: every scored flight appended to the Delta table ``online/requests`` in micro-batches,
by a thread of its own, so a request never waits on the lake. A batch that fails to write stays queued
and is tried again (and written at shutdown); nothing is dropped."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import deque
from datetime import UTC, date, datetime

import polars as pl

from lakehouse.catalog import ONLINE_REQUESTS
from lakehouse.resources import LakeStorage

log = logging.getLogger(__name__)

SCHEMA = {
    "request_id": pl.String,
    "requested_at": pl.Datetime("us", "UTC"),
    "flight_id": pl.String,
    "flight_date": pl.Date,
    "sched_dep_at": pl.Datetime("us", "UTC"),
    "predict_at": pl.Datetime("us", "UTC"),
    "as_of": pl.Datetime("us", "UTC"),
    "final": pl.Boolean,
    "missing_history_days": pl.Int32,
    "model_version": pl.Int64,
    "probability_late": pl.Float64,
    "features": pl.String,
}


def log_row(request_id: str, requested_at: datetime, vector: dict, version: int, probability: float) -> dict:
    """One row of ``online/requests`` for a scored vector."""
    return {
        "request_id": request_id,
        "requested_at": requested_at,
        "flight_id": vector["flight_id"],
        "flight_date": date.fromisoformat(vector["date"]),
        "sched_dep_at": datetime.fromisoformat(vector["sched_dep_at"]),
        "predict_at": datetime.fromisoformat(vector["predict_at"]),
        "as_of": datetime.fromisoformat(vector["as_of"]),
        "final": vector["final"],
        "missing_history_days": len(vector["missing_history_days"]),
        "model_version": version,
        "probability_late": probability,
        "features": json.dumps(vector["features"]),
    }


class RequestLog:
    """Queues rows and appends them to ``online/requests`` every ``interval`` seconds."""

    def __init__(self, lake: LakeStorage, interval: float = 1.0):
        self.lake, self.interval = lake, interval
        self.rows: deque[tuple] = deque()
        self.written = 0
        self.failures = 0
        self.last_error: str | None = None
        self.writer = f"serve-{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="request-log", daemon=True)

    def start(self) -> RequestLog:
        self._thread.start()
        return self

    def add(self, scored: list[tuple[str, datetime, dict, int, float]]) -> None:
        """Queue scored flights as (request id, requested at, vector, version, probability); they become
        rows in the log's thread, not on the request path."""
        self.rows.extend(scored)

    @property
    def pending(self) -> int:
        return len(self.rows)

    def flush(self) -> int:
        """Write what is queued now, in one commit; returns the rows written (0 if the write failed:
        they stay queued)."""
        batch = [self.rows.popleft() for _ in range(len(self.rows))]
        if not batch:
            return 0
        try:
            rows = [log_row(*scored) for scored in batch]
            self.lake.append(
                ONLINE_REQUESTS.path, pl.DataFrame(rows, schema=SCHEMA), ["flight_date"], self.writer
            )
        except Exception as error:  # the lake is outside: keep the rows, say why, try again later
            self.rows.extendleft(reversed(batch))
            self.failures += 1
            self.last_error = f"{datetime.now(UTC).isoformat(timespec='seconds')}: {error}"
            log.error("could not append %d request(s) to %s: %s", len(batch), ONLINE_REQUESTS.path, error)
            return 0
        self.written += len(batch)
        return len(batch)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def close(self, attempts: int = 3) -> None:
        """Stop the thread and write what is left."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        for _ in range(attempts):
            self.flush()
            if not self.rows:
                return
            time.sleep(0.5)
        log.error("%d request(s) could not be written to %s: %s", len(self.rows), ONLINE_REQUESTS.path,
                  self.last_error)  # fmt: skip
