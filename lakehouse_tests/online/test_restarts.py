"""Crashes in the middle of a live replay: the stream worker killed and started again, then Redis itself
killed and started again on its data (append-only, synced on every write). No event is lost and none
counts twice: every fact is recorded once, and every vector still equals gold's row."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from lakehouse.lib.features import FEATURE_COLUMNS
from lakehouse.online.feed import live_events, send_live
from lakehouse.online.store import APPLIED, LIVE, OnlineStore
from lakehouse_tests.online.conftest import LIVE_DAY, gold_of_live_day, push_history

# The day's 28 hours of events in about ten seconds.
SPEED = 10_000


def facts_recorded(store: OnlineStore) -> int:
    return store.redis.hlen(LIVE.format(day=LIVE_DAY))


def wait_for(condition, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds:g} s"
        time.sleep(0.1)


def start_worker(env: dict, log: Path) -> subprocess.Popen:
    lakehouse = Path(sys.executable).parent / "lakehouse"
    return subprocess.Popen(
        [str(lakehouse), "stream"], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


def quietly(store: OnlineStore, read, default):
    """``read(store)``, or ``default`` while the server is down."""
    try:
        return read(store)
    except Exception:
        return default


@pytest.mark.slow
def test_a_worker_crash_and_a_redis_crash_mid_replay_lose_nothing_and_count_nothing_twice(
    live_stores, redis_server, store, tmp_path
):
    push_history(live_stores, store.url)
    events = live_events(live_stores.lake, LIVE_DAY, LIVE_DAY)
    env = {**os.environ, "LAKEHOUSE_REDIS_URL": store.url, "LAKEHOUSE_DATA_DIR": str(tmp_path / "data")}
    log = tmp_path / "worker.log"
    worker = start_worker(env, log)
    sent: dict = {}
    feed = threading.Thread(
        target=lambda: sent.update(report=send_live(OnlineStore(store.url), events, SPEED, retry_seconds=60))
    )
    feed.start()
    try:
        # The worker dies without warning a quarter of the way in, and starts again.
        wait_for(lambda: quietly(store, facts_recorded, 0) > events.height // 4, "a quarter of the facts")
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        worker = start_worker(env, log)
        # Redis dies without warning past half way, and starts again on its data.
        wait_for(lambda: quietly(store, facts_recorded, 0) > events.height // 2, "half of the facts")
        redis_server.kill()
        time.sleep(1)
        redis_server.start()
        feed.join(timeout=120)
        assert not feed.is_alive(), "the feed did not finish"
        wait_for(lambda: quietly(store, OnlineStore.caught_up, False), "the worker catching up")
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    assert sent["report"].events == events.height
    # The crash came mid-replay: the feed had to resend, the worker to wait for the server.
    assert sent["report"].resends > 0
    assert "does not answer" in log.read_text()
    # Every fact once: recorded by its event id, whatever was resent or redelivered.
    assert facts_recorded(store) == events.height
    assert store.redis.scard(APPLIED.format(day=LIVE_DAY)) == events.height
    gold = gold_of_live_day(live_stores).sort("flight_id")
    vectors = store.vectors(gold["flight_id"].to_list())
    assert all(v is not None and v["final"] for v in vectors), log.read_text()[-3000:]
    online = pl.DataFrame(
        [{"flight_id": v["flight_id"], **v["features"]} for v in vectors],
        schema={"flight_id": pl.String, **{c: gold.schema[c] for c in FEATURE_COLUMNS}},
        strict=False,
    ).sort("flight_id")
    assert_frame_equal(online, gold.select("flight_id", *FEATURE_COLUMNS))
