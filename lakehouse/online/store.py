"""The online store in Redis: what each part of the live path reads and writes, under one key layout.

- ``lakehouse:events``: the event stream (``replay --live`` adds, the ``online`` group of ``lakehouse
  stream`` reads and acknowledges; what all have acknowledged is trimmed).
- ``lakehouse:history:{day}``: the lake's silver flights (with the label) and weather of a day, as Arrow
  IPC, and ``lakehouse:history:reference`` the planes and airport zones; ``lakehouse:history:pushed``
  says when and from which Delta versions each day was pushed (``online/feature_store`` writes them).
- ``lakehouse:live:{day}``: each fact of a live day, by event id; ``lakehouse:live:days`` the live days,
  ``lakehouse:live:clock`` the time of the latest event applied.
- ``lakehouse:vector:{flight_id}``: a flight's feature vector as of the latest event (JSON), and
  ``lakehouse:flight:{date}:{carrier}:{flight}:{origin}`` its id.
- ``lakehouse:stats`` and ``lakehouse:freshness``: the worker's counters and recent event-to-vector
  times, for ``/metrics`` and the benchmarks; ``lakehouse:rejected`` the entries it could not apply, with
  the reason.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime

import polars as pl
import redis

STREAM = "lakehouse:events"
GROUP = "online"
HISTORY = "lakehouse:history:{day}"
REFERENCE = "lakehouse:history:reference"
PUSHED = "lakehouse:history:pushed"
LIVE = "lakehouse:live:{day}"
LIVE_DAYS = "lakehouse:live:days"
APPLIED = "lakehouse:live:applied:{day}"
CLOCK = "lakehouse:live:clock"
VECTOR = "lakehouse:vector:{flight_id}"
FLIGHT = "lakehouse:flight:{day}:{carrier}:{flight}:{origin}"
STATS = "lakehouse:stats"
REJECTED = "lakehouse:rejected"
FRESHNESS = "lakehouse:freshness"
FRESHNESS_KEPT = 100_000


class StoreUnavailable(RuntimeError):
    """The online store does not answer; the message names where and why."""


def _ipc(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_ipc(buffer, compression="zstd")
    return buffer.getvalue()


def _frame(data: bytes) -> pl.DataFrame:
    return pl.read_ipc(io.BytesIO(data))


class OnlineStore:
    """The Redis at ``url``, read and written in the layout above."""

    def __init__(self, url: str, timeout: float = 5.0):
        self.url = url
        self.redis = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)

    def check(self) -> None:
        """Raise ``StoreUnavailable`` unless the server answers."""
        try:
            self.redis.ping()
        except (redis.ConnectionError, redis.TimeoutError, OSError) as error:
            raise StoreUnavailable(f"the online store at {self.url} does not answer ({error})") from None

    # --- history, pushed from the lake ----------------------------------------------------------------

    def put_history(
        self, days: dict[date, tuple[pl.DataFrame, pl.DataFrame]], versions: dict[str, int | None]
    ) -> int:
        """Store each day's (flights, weather); returns the bytes written."""
        pushed_at = datetime.now(UTC).isoformat()
        written, pipe = 0, self.redis.pipeline(transaction=True)
        for day, (flights, weather) in days.items():
            flights_ipc, weather_ipc = _ipc(flights), _ipc(weather)
            written += len(flights_ipc) + len(weather_ipc)
            pipe.hset(HISTORY.format(day=day), mapping={"flights": flights_ipc, "weather": weather_ipc})
            pipe.hset(
                PUSHED,
                day.isoformat(),
                json.dumps({"pushed_at": pushed_at, "versions": versions, "flights": flights.height}),
            )
        pipe.execute()
        return written

    def put_reference(self, planes: pl.DataFrame, zones: dict[str, str]) -> None:
        self.redis.hset(REFERENCE, mapping={"planes": _ipc(planes), "zones": json.dumps(zones)})

    def reference(self) -> tuple[pl.DataFrame, dict[str, str]] | None:
        stored = self.redis.hgetall(REFERENCE)
        if not stored:
            return None
        return _frame(stored[b"planes"]), json.loads(stored[b"zones"])

    def pushed(self) -> dict[date, dict]:
        """Each day the store holds, with when and from which versions it was pushed."""
        return {
            date.fromisoformat(day.decode()): json.loads(info)
            for day, info in self.redis.hgetall(PUSHED).items()
        }

    def history_day(self, day: date) -> tuple[pl.DataFrame, pl.DataFrame] | None:
        stored = self.redis.hgetall(HISTORY.format(day=day))
        if not stored:
            return None
        return _frame(stored[b"flights"]), _frame(stored[b"weather"])

    # --- events --------------------------------------------------------------------------------------

    def send(self, events: Iterable[dict]) -> int:
        """Add events to the stream in one round trip, each stamped with when it was sent."""
        pipe = self.redis.pipeline(transaction=False)
        count = 0
        for event in events:
            pipe.xadd(STREAM, event | {"sent_at": repr(time.time())})
            count += 1
        pipe.execute()
        return count

    def ensure_group(self) -> None:
        """The consumer group of the stream, reading from its first event (created once)."""
        try:
            self.redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def caught_up(self) -> bool:
        """Whether the worker has read and acknowledged every event in the stream."""
        if not self.redis.exists(STREAM):
            return True
        last = self.redis.xinfo_stream(STREAM)["last-generated-id"]
        groups = {g["name"].decode(): g for g in self.redis.xinfo_groups(STREAM)}
        group = groups.get(GROUP)
        return group is not None and group["last-delivered-id"] == last and group["pending"] == 0

    # --- vectors -------------------------------------------------------------------------------------

    def put_vectors(self, records: list[dict], freshness_ms: list[float], stats: dict[str, int]) -> None:
        pipe = self.redis.pipeline(transaction=True)
        for record in records:
            pipe.set(VECTOR.format(flight_id=record["flight_id"]), json.dumps(record))
            pipe.set(
                FLIGHT.format(
                    day=record["date"],
                    carrier=record["carrier"],
                    flight=record["flight"],
                    origin=record["origin"],
                ),
                record["flight_id"],
            )
        if freshness_ms:
            pipe.lpush(FRESHNESS, *(f"{ms:.3f}" for ms in freshness_ms))
            pipe.ltrim(FRESHNESS, 0, FRESHNESS_KEPT - 1)
        self._count(pipe, stats)
        pipe.execute()

    def count(self, stats: dict[str, int]) -> None:
        """Add to the worker's counters, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        self._count(pipe, stats)
        pipe.execute()

    @staticmethod
    def _count(pipe, stats: dict[str, int]) -> None:
        for name, value in stats.items():
            pipe.hincrby(STATS, name, value)

    def flight_id(self, day: date, carrier: str, flight: int, origin: str) -> str | None:
        found = self.redis.get(FLIGHT.format(day=day, carrier=carrier, flight=flight, origin=origin))
        return None if found is None else found.decode()

    def vectors(self, flight_ids: list[str]) -> list[dict | None]:
        """The stored vectors of ``flight_ids``, None where a flight has none, in one round trip."""
        if not flight_ids:
            return []
        found = self.redis.mget([VECTOR.format(flight_id=f) for f in flight_ids])
        return [None if raw is None else json.loads(raw) for raw in found]

    def stats(self) -> dict[str, int]:
        return {name.decode(): int(value) for name, value in self.redis.hgetall(STATS).items()}

    def freshness(self) -> list[float]:
        """The recent event-to-vector times in milliseconds, newest first."""
        return [float(v) for v in self.redis.lrange(FRESHNESS, 0, -1)]
