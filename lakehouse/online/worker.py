"""``lakehouse stream``: the stream worker that keeps the online feature vectors.

It reads the event stream as the ``online`` consumer group, and for each batch of events, in one Redis
transaction, records each fact under its event id (a fact seen twice is recorded once: the feed may
resend after a lost reply, Redis may redeliver after a crash) and acknowledges the batch. Then it computes
the vectors of the live days' flights with ``lakehouse.lib.live.OnlineFeatures`` (the functions of
``lakehouse.lib.features`` that build ``gold/flight_features``), over the history ``online/feature_store``
pushed from the lake, and stores them. Started again, it reloads the facts from Redis, reads what was
delivered to it and not acknowledged, then goes on where the group stopped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import polars as pl
import redis

from lakehouse.catalog import ONLINE_FEATURE_STORE
from lakehouse.lib.live import FLIGHT_SCHEMA, WEATHER_SCHEMA, EventError, OnlineFeatures, vector_records
from lakehouse.online.store import APPLIED, CLOCK, GROUP, LIVE, LIVE_DAYS, REJECTED, STREAM, OnlineStore

log = logging.getLogger(__name__)

DEFAULT_HORIZON = timedelta(hours=6)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros_to_time(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


@dataclass(frozen=True)
class Event:
    """One stream entry, decoded."""

    entry_id: bytes
    event_id: str
    kind: str
    day: date
    at: datetime
    payload: dict
    sent_at: float

    @classmethod
    def decode(cls, entry_id: bytes, fields: dict[bytes, bytes]) -> Event:
        """Raises ``EventError`` naming the entry and the field that is missing or malformed."""
        try:
            return cls(
                entry_id,
                fields[b"id"].decode(),
                fields[b"kind"].decode(),
                date.fromisoformat(fields[b"day"].decode()),
                _micros_to_time(int(fields[b"at"])),
                json.loads(fields[b"payload"]),
                float(fields.get(b"sent_at", b"0")),
            )
        except KeyError as missing:
            field = missing.args[0].decode()
            raise EventError(f"stream entry {entry_id.decode()} has no field {field}") from None
        except (ValueError, UnicodeDecodeError) as error:
            raise EventError(f"stream entry {entry_id.decode()} is malformed: {error}") from None


class StreamWorker:
    """Consumes the stream into the online store (see the module's description)."""

    def __init__(
        self,
        store: OnlineStore,
        consumer: str = "worker",
        horizon: timedelta = DEFAULT_HORIZON,
        batch: int = 2000,
    ):
        self.store, self.consumer, self.horizon, self.batch = store, consumer, horizon, batch
        self.engine: OnlineFeatures | None = None
        self._history: dict[date, tuple[str, pl.DataFrame, pl.DataFrame] | None] = {}

    # --- state -----------------------------------------------------------------------------------------

    def _new_engine(self) -> OnlineFeatures:
        reference = self.store.reference()
        if reference is None:
            raise RuntimeError(
                f"the online store at {self.store.url} has no reference data: materialize "
                f"{ONLINE_FEATURE_STORE.path} first (`make serve` does)"
            )
        return OnlineFeatures(*reference)

    def load(self) -> None:
        """Rebuild the live state from the facts recorded in Redis."""
        self.engine = self._new_engine()
        for raw_day in self.store.redis.smembers(LIVE_DAYS):
            day = date.fromisoformat(raw_day.decode())
            for recorded in self.store.redis.hvals(LIVE.format(day=day)):
                fact = json.loads(recorded)
                self.engine.apply(fact["kind"], day, _micros_to_time(fact["at"]), fact["payload"])
        clock = self.store.redis.get(CLOCK)
        if clock is not None:
            self.engine.clock = _micros_to_time(int(clock))

    def _record(self, events: list[Event], rejected: list[tuple[bytes, str]]) -> int:
        """Record the facts and acknowledge the entries in one transaction; returns the duplicates."""
        pipe = self.store.redis.pipeline(transaction=True)
        for event in events:
            pipe.sadd(APPLIED.format(day=event.day), event.event_id)
        for event in events:
            fact = {"kind": event.kind, "at": int(event.at.timestamp() * 1e6), "payload": event.payload}
            pipe.hset(LIVE.format(day=event.day), event.event_id, json.dumps(fact))
            pipe.sadd(LIVE_DAYS, event.day.isoformat())
        for entry_id, reason in rejected:
            pipe.rpush(REJECTED, json.dumps({"entry": entry_id.decode(), "reason": reason}))
        if self.engine is not None and self.engine.clock is not None:
            pipe.set(CLOCK, int(self.engine.clock.timestamp() * 1e6))
        pipe.xack(STREAM, GROUP, *[e.entry_id for e in events], *[entry for entry, _ in rejected])
        results = pipe.execute()
        return sum(1 for added in results[: len(events)] if added == 0)

    # --- features --------------------------------------------------------------------------------------

    def _history_of(self, first: date, last: date) -> tuple[pl.DataFrame, pl.DataFrame, list[date]]:
        """The store's days ``first`` to ``last`` that are not live, and the days it lacks. Each day is read
        from Redis once per push (``pushed_at``) and kept in the columns the features read."""
        assert self.engine is not None
        pushed = self.store.pushed()
        flights, weather, missing = (
            [pl.DataFrame(schema=FLIGHT_SCHEMA)],
            [pl.DataFrame(schema=WEATHER_SCHEMA)],
            [],
        )
        for day in (first + timedelta(days=n) for n in range((last - first).days + 1)):
            if day in self.engine.days:
                continue
            stamp = pushed.get(day, {}).get("pushed_at")
            cached = self._history.get(day)
            if stamp is not None and (cached is None or cached[0] != stamp):
                stored = self.store.history_day(day)
                cached = (
                    None
                    if stored is None
                    else (stamp, stored[0].select(*FLIGHT_SCHEMA), stored[1].select(*WEATHER_SCHEMA))
                )
                self._history[day] = cached
            if stamp is None or cached is None:
                missing.append(day)
                continue
            flights.append(cached[1])
            weather.append(cached[2])
        return pl.concat(flights), pl.concat(weather), missing

    def refresh(self, events: list[Event], recompute_final: bool = False) -> int:
        """Compute and store the vectors that may have changed; returns how many."""
        assert self.engine is not None
        needed = self.engine.history_needed()
        if needed is None:
            return 0
        flights, weather, missing = self._history_of(*needed)
        started = time.perf_counter()
        vectors = self.engine.vectors(flights, weather, missing, self.horizon, recompute_final)
        computed_ms = (time.perf_counter() - started) * 1000
        records = [] if vectors is None or vectors.rows.is_empty() else vector_records(vectors)
        now = time.time()
        for record in records:
            record["computed_at"] = now
        self.store.put_vectors(
            records,
            [(now - e.sent_at) * 1000 for e in events if e.sent_at],
            {"vectors_written": len(records), "refreshes": 1, "refresh_ms_total": int(computed_ms)},
        )
        return len(records)

    # --- the loop --------------------------------------------------------------------------------------

    def handle(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> int:
        """Apply, record, acknowledge and refresh one batch; returns the events applied."""
        assert self.engine is not None
        events, rejected = [], []
        for entry_id, fields in entries:
            if not fields:  # trimmed from the stream after delivery: nothing left to apply
                rejected.append((entry_id, "the entry was trimmed before it was acknowledged"))
                continue
            try:
                event = Event.decode(entry_id, fields)
                self.engine.apply(event.kind, event.day, event.at, event.payload)
            except EventError as error:
                log.error("rejected %s: %s", entry_id.decode(), error)
                rejected.append((entry_id, str(error)))
                continue
            events.append(event)
        duplicates = self._record(events, rejected)
        self._trim(entries[-1][0])
        self.store.count(
            {
                "events_applied": len(events) - duplicates,
                "events_duplicate": duplicates,
                "events_rejected": len(rejected),
            }
        )
        if events:
            self.refresh(events)
        return len(events)

    def _trim(self, last: bytes) -> None:
        """Drop the stream's entries before ``last`` once none is waiting for an acknowledgement: the
        facts are recorded, the stream need not keep a year of events."""
        if self.store.redis.xpending(STREAM, GROUP)["pending"] == 0:
            self.store.redis.xtrim(STREAM, minid=last)

    def _read(self, position: str, block_ms: int | None) -> list:
        answer = self.store.redis.xreadgroup(
            GROUP, self.consumer, {STREAM: position}, count=self.batch, block=block_ms
        )
        return answer[0][1] if answer else []

    def start(self) -> None:
        """Join the group, reload the state, finish what was delivered and not acknowledged."""
        self.store.ensure_group()
        self.load()
        self.refresh([], recompute_final=True)
        while entries := self._read("0", None):
            self.handle(entries)

    def run(self, stop=None, idle_exit: float | None = None, retry_seconds: float = 120) -> None:
        """Consume until ``stop`` (a ``threading.Event``) is set, or the stream has been idle and caught
        up for ``idle_exit`` seconds. Rides out the store going away for up to ``retry_seconds``."""
        self.start()
        idle_since, down_since = time.monotonic(), None
        while stop is None or not stop.is_set():
            try:
                entries = self._read(">", 500)
                if entries:
                    self.handle(entries)
                    idle_since = time.monotonic()
                elif idle_exit is not None and time.monotonic() - idle_since > idle_exit:
                    return
                down_since = None
            except (redis.ConnectionError, redis.TimeoutError) as error:
                down_since = down_since or time.monotonic()
                if time.monotonic() - down_since > retry_seconds:
                    raise
                log.warning("the online store at %s does not answer (%s); retrying", self.store.url, error)
                time.sleep(0.5)
                self._reconnected()
            except redis.ResponseError as error:
                if "NOGROUP" not in str(error):
                    raise
                self._reconnected()

    def _reconnected(self) -> None:
        """After the store came back: rejoin the group and reload, in case it lost or replayed writes."""
        with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
            self.start()
