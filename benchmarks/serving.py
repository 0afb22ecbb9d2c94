"""``make bench-serving`` (and ``make bench``): the live path's numbers on this machine, after ``make demo``.

In a Redis of its own (a temporary folder and port; ``data/`` is only read), with the demo's lake, warehouse
and champion:
1. ``online/feature_store`` pushes the year's history; the stream worker (``lakehouse stream``) starts.
2. The live feed replays ``--day`` at ``--speed`` times real time; meanwhile ``lakehouse serve`` answers
   single-flight requests sent at a fixed rate (``--rate`` per second, open loop: each request leaves on
   its schedule whether or not the last came back) by an asynchronous client on loopback, for
   ``--seconds``; then as many as it can answer (eight connections); then batches of 1,000 flights.
3. Event-to-online freshness: for each event, from the feed sending it to the worker storing the vectors
   it changed (``lakehouse:freshness``).
4. The peer: ``mlflow models serve`` of the same model version on the same machine, given the same flights'
   feature vectors (it has no online store), under the same load.

Results go to ``benchmarks/serving.json`` and the "Serving" section of ``benchmarks/results.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

PROJECT = Path(__file__).resolve().parent.parent
OUTPUT = PROJECT / "benchmarks" / "serving.json"
BIN = Path(sys.executable).parent


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, name: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"{name} stopped (exit {process.returncode})")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not answer at {url} within {seconds:g} s")
        time.sleep(0.5)


# --- load ----------------------------------------------------------------------------------------------


async def open_loop(url: str, bodies: list[bytes], rate: float, seconds: float) -> dict:
    """Send ``rate`` requests a second for ``seconds``, each on its schedule; latency per request."""
    import aiohttp

    latencies, failures = [], 0
    count = int(rate * seconds)
    connector = aiohttp.TCPConnector(limit=64)
    # An answer later than this counts as failed (a service far past its capacity queues for minutes).
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()

        async def one(i: int) -> None:
            nonlocal failures
            await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
            sent = time.perf_counter()
            try:
                async with session.post(url, data=bodies[i % len(bodies)], headers=JSON) as answer:
                    await answer.read()
                    if answer.status != 200:
                        failures += 1
            except (aiohttp.ClientError, TimeoutError):
                failures += 1
            latencies.append(time.perf_counter() - sent)

        await asyncio.gather(*(one(i) for i in range(count)))
        elapsed = time.perf_counter() - started
    return summary(latencies, failures, count / elapsed)


async def closed_loop(url: str, bodies: list[bytes], connections: int, seconds: float) -> dict:
    """As many requests as ``connections`` clients, each waiting for its answer, get through."""
    import aiohttp

    latencies, failures = [], 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as session:
        started = time.perf_counter()

        async def client(k: int) -> None:
            nonlocal failures
            i = k
            while time.perf_counter() - started < seconds:
                sent = time.perf_counter()
                async with session.post(url, data=bodies[i % len(bodies)], headers=JSON) as answer:
                    await answer.read()
                    failures += answer.status != 200
                latencies.append(time.perf_counter() - sent)
                i += connections

        await asyncio.gather(*(client(k) for k in range(connections)))
        elapsed = time.perf_counter() - started
    return summary(latencies, failures, len(latencies) / elapsed)


JSON = {"content-type": "application/json"}


def summary(latencies: list[float], failures: int, per_second: float) -> dict:
    values = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "failures": int(failures),
        "per_second": round(per_second, 1),
        "p50_ms": round(float(np.percentile(values, 50)), 2),
        "p99_ms": round(float(np.percentile(values, 99)), 2),
    }


def batches(url: str, bodies: list[bytes], flights_each: int) -> dict:
    """Flights per second in batch requests (one at a time)."""
    started = time.perf_counter()
    for body in bodies:
        request = urllib.request.Request(url, data=body, headers=JSON)
        with urllib.request.urlopen(request, timeout=120) as answer:
            answer.read()
    elapsed = time.perf_counter() - started
    return {
        "batches": len(bodies),
        "flights_each": flights_each,
        "flights_per_second": round(len(bodies) * flights_each / elapsed),
    }


# --- the run -------------------------------------------------------------------------------------------


def settled(store, quiet: float = 3.0) -> None:
    """Wait until the worker has acknowledged every event and stored the vectors of the last batch."""
    while not store.caught_up():
        time.sleep(0.2)
    last = None
    while (now := store.stats().get("refreshes")) != last:
        last = now
        time.sleep(quiet)


def run(day: date, speed: float, rate: float, seconds: float, work: Path, freshness_seconds: float) -> dict:
    import dagster as dg

    from lakehouse.definitions import resources_from_env
    from lakehouse.defs.online.feature_store import feature_store
    from lakehouse.lib.features import FEATURE_COLUMNS
    from lakehouse.online.feed import live_events, send_live
    from lakehouse.online.redis_server import RedisServer
    from lakehouse.online.store import FRESHNESS, OnlineStore
    from lakehouse.reads import read_features
    from lakehouse.resources import OnlineRedis

    resources = resources_from_env()
    champion = resources["mlflow"].champion()
    if champion is None:
        raise SystemExit("no champion in data/mlflow: run `make demo` first")
    version = int(champion.version)
    shutil.rmtree(work, ignore_errors=True)
    redis = RedisServer(work / "redis", free_port()).start()
    processes: list[subprocess.Popen] = []
    env = {**os.environ, "LAKEHOUSE_REDIS_URL": redis.url, "LAKEHOUSE_LAKE_URI": str(work / "requests-lake")}
    try:
        started = time.perf_counter()
        pushed = dg.materialize(
            [feature_store],
            resources={
                "lake": resources["lake"],
                "warehouse": resources["warehouse"],
                "online": OnlineRedis(url=redis.url),
            },
        )
        push_seconds = time.perf_counter() - started
        assert pushed.success
        log = (work / "processes.log").open("ab")
        worker = subprocess.Popen(
            [str(BIN / "lakehouse"), "stream"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        processes.append(worker)
        port = free_port()
        service = subprocess.Popen(
            [str(BIN / "lakehouse"), "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        processes.append(service)
        wait_for(f"http://127.0.0.1:{port}/health", service, "lakehouse serve")  # ready: model and store

        store = OnlineStore(redis.url)
        events = live_events(resources["lake"], day, day)
        # The quiet night at full speed, then the day from 7:00 in New York at the feed's pace; freshness
        # counts the paced events only.
        burst_until = (
            datetime.combine(day, datetime.min.time(), ZoneInfo("America/New_York"))
            .replace(hour=7)
            .astimezone(UTC)
        )
        burst = events.filter(pl.col("at") < burst_until)
        send_live(store, burst, None)
        settled(store)
        store.redis.delete(FRESHNESS)
        stop = threading.Event()
        paced = events.filter(pl.col("at") >= burst_until)
        fed: dict = {}
        feed = threading.Thread(
            target=lambda: fed.update(report=send_live(store, paced, speed, stop=stop)), daemon=True
        )
        feed_started = time.perf_counter()
        feed.start()
        # Requests for flights of the day whose vectors exist: wait for the schedule to be computed.
        gold = read_features(resources["warehouse"], day, day)
        ids = gold["flight_id"].to_list()
        deadline = time.monotonic() + 120
        while sum(v is not None for v in store.vectors(ids)) < 50:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    "the worker wrote no vectors within 120 s: see " + str(work / "processes.log")
                )
            time.sleep(0.5)
        known = [f for f, v in zip(ids, store.vectors(ids), strict=True) if v is not None]
        single = [json.dumps({"flight_id": f}).encode() for f in known]
        predict = f"http://127.0.0.1:{port}/predict"
        # Each service: as fast as eight connections get answers, batches, then the fixed rate (last: a
        # service past its capacity queues requests for minutes).
        asyncio.run(closed_loop(predict, single, 8, 3))  # warm up
        batch_bodies = [json.dumps({"flights": [{"flight_id": f} for f in known[:1000]]}).encode()] * 10
        ours = {
            "closed_loop": asyncio.run(closed_loop(predict, single, 8, min(seconds, 15))),
            "batch": batches(f"http://127.0.0.1:{port}/predict/batch", batch_bodies, len(known[:1000])),
            "open_loop": asyncio.run(open_loop(predict, single, rate, seconds)),
        }
        ours["feed_running_throughout"] = feed.is_alive()
        # The feed goes on alone a while, for more events to time.
        stop.wait(freshness_seconds)
        stop.set()
        feed.join()
        feed_seconds = time.perf_counter() - feed_started
        settled(store)
        freshness = np.array(store.freshness())
        stats = store.stats()
        service.terminate()
        service.wait(timeout=30)
        print("lakehouse serve:", json.dumps(ours), flush=True)

        # The peer: the same version behind `mlflow models serve`, sent the same flights' vectors.
        peer_port = free_port()
        tracking, tracking_name = resources["mlflow"].tracking_uri, resources["mlflow"].model_name
        peer = subprocess.Popen(
            [str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{tracking_name}/{version}",
             "--env-manager", "local", "--host", "127.0.0.1", "--port", str(peer_port), "--workers", "1"],
            # It starts `uvicorn` by name: the environment's bin folder goes first on the PATH.
            env={**env, "MLFLOW_TRACKING_URI": tracking, "MLFLOW_REGISTRY_URI": tracking,
                 "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"},
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        processes.append(peer)
        wait_for(f"http://127.0.0.1:{peer_port}/health", peer, "mlflow models serve", seconds=300)
        from lakehouse.lib.model import model_input

        rows = model_input(gold.filter(gold["flight_id"].is_in(known)).select(FEATURE_COLUMNS))

        def split(frame) -> bytes:
            return json.dumps(
                {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}
            ).encode()

        peer_single = [split(rows.iloc[[i]]) for i in range(min(len(rows), 500))]
        invocations = f"http://127.0.0.1:{peer_port}/invocations"
        asyncio.run(closed_loop(invocations, peer_single, 8, 3))
        theirs = {
            "closed_loop": asyncio.run(closed_loop(invocations, peer_single, 8, min(seconds, 15))),
            "batch": batches(invocations, [split(rows.iloc[:1000])] * 10, min(1000, len(rows))),
            "open_loop": asyncio.run(open_loop(invocations, peer_single, rate, seconds)),
        }
        return {
            "day": str(day),
            "speed": speed,
            "rate": rate,
            "seconds": seconds,
            "model_version": version,
            "history_push_seconds": round(push_seconds, 1),
            "events": events.height,
            "events_paced": fed["report"].events,
            "feed_seconds": round(feed_seconds, 1),
            "freshness_p50_ms": round(float(np.percentile(freshness, 50)), 1),
            "freshness_p99_ms": round(float(np.percentile(freshness, 99)), 1),
            "freshness_events": int(freshness.size),
            "worker_refresh_ms_mean": round(stats["refresh_ms_total"] / max(stats["refreshes"], 1), 1),
            "lakehouse_serve": ours,
            "mlflow_models_serve": theirs,
        }
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
        redis.stop()


# --- the report ----------------------------------------------------------------------------------------


def section() -> str:
    """The "Serving" section of results.md, from serving.json (empty before the first run)."""
    if not OUTPUT.exists():
        return ""
    r = json.loads(OUTPUT.read_text())
    ours, theirs = r["lakehouse_serve"], r["mlflow_models_serve"]

    def row(name: str, numbers: dict) -> str:
        o, c, b = numbers["open_loop"], numbers["closed_loop"], numbers["batch"]
        return (
            f"| {name} | {o['p50_ms']} | {o['p99_ms']} | {o['per_second']:,.0f} | {o['failures']:,} | "
            f"{c['per_second']:,.0f} | {c['p99_ms']} | {b['flights_per_second']:,} |"
        )

    def verdict(holds: bool) -> str:
        return "holds" if holds else "misses"

    o, batch = ours["open_loop"], ours["batch"]["flights_per_second"]
    lines = [
        "",
        "## Serving",
        "",
        f"Written by `make bench-serving` on {r.get('written', '?')}. The live feed replays {r['day']}",
        f"from 7:00 in New York at {r['speed']:g} times real time ({r['events_paced']:,} events in",
        f"{r['feed_seconds']} s, the night before at full speed). Meanwhile, on the same 2 cores, an",
        "asynchronous client on loopback asks each service for single flights as fast as eight",
        "connections get answers for 15 s, then for batches of 1,000 flights (as many as the day has",
        f"vectors), then for {r['rate']:g} single flights a second for {r['seconds']:g} s (open loop: each",
        "request leaves on its schedule; an answer later than 30 s counts as failed). Both serve",
        f"`flight_delay` version {r['model_version']}; `mlflow models serve` is sent the flights' feature",
        "vectors (it has no store).",
        "",
        "| service | p50 ms | p99 ms | requests/s | failed | max requests/s (8 conn.) | p99 ms there | "
        "flights/s in batches |",
        "|---|---|---|---|---|---|---|---|",
        row("lakehouse serve (store lookup + compiled trees)", ours),
        row("mlflow models serve (same version)", theirs),
        "",
        "| target | measured | target | verdict |",
        "|---|---|---|---|",
        f"| single request p99 at {r['rate']:g}/s | {o['p99_ms']} ms | ≤ 10 ms at 300/s | "
        f"{verdict(o['p99_ms'] <= 10 and r['rate'] >= 300 and o['failures'] == 0)} |",
        f"| flights per second in batch requests | {batch:,} | ≥ 5,000 | {verdict(batch >= 5000)} |",
        f"| event-to-online freshness p99 | {r['freshness_p99_ms']:,} ms (p50 {r['freshness_p50_ms']:,}) | "
        f"≤ 1,000 ms | {verdict(r['freshness_p99_ms'] <= 1000)} |",
        "",
        f"Freshness counts {r['freshness_events']:,} events (the feed goes on alone for a while after the",
        "load), from the feed sending each to the worker",
        f"storing the vectors; the worker recomputes the flights ahead in {r['worker_refresh_ms_mean']} ms",
        f"on average per batch. Pushing the year's history to the store took {r['history_push_seconds']} s.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--day", type=date.fromisoformat, default=date(2013, 12, 30))
    parser.add_argument("--speed", type=float, default=60)
    parser.add_argument("--rate", type=float, default=300)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--freshness-seconds", type=float, default=150, help="the feed alone, after the load")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "lakehouse-bench-serving")
    args = parser.parse_args()
    result = run(args.day, args.speed, args.rate, args.seconds, args.work, args.freshness_seconds)
    result["written"] = str(date.today())
    OUTPUT.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    from benchmarks.run import rewrite

    rewrite()


if __name__ == "__main__":
    main()
