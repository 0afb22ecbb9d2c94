"""The live path's fixtures: a real Redis server of the test's own, and a lake, warehouse and MLflow store
holding real silver for a March day and the 36 days before, gold features for its last eight days and a
small champion trained on the seven before it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import mlflow
import polars as pl
import pytest

from lakehouse import catalog
from lakehouse.defs.online.feature_store import feature_store
from lakehouse.lib.features import HISTORY_LOOKBACK_DAYS
from lakehouse.lib.model import build_pipeline, model_input
from lakehouse.ml.registry import log_model
from lakehouse.online.redis_server import RedisServer
from lakehouse.online.store import OnlineStore
from lakehouse.online.worker import StreamWorker
from lakehouse.reads import features_of_days, read_features
from lakehouse.resources import CHAMPION, LakeStorage, MlflowTracking, OnlineRedis, Warehouse
from lakehouse_tests.real_silver import real_silver, reference
from lakehouse_tests.servers import free_port

# An ordinary Friday in March; the model trains on the week before it.
LIVE_DAY = date(2013, 3, 8)
TRAIN_FIRST = LIVE_DAY - timedelta(days=7)
SILVER_FIRST = TRAIN_FIRST - timedelta(days=HISTORY_LOOKBACK_DAYS)
SMALL_MODEL = {"learning_rate": 0.1, "max_iter": 60, "max_leaf_nodes": 15, "l2_regularization": 0.0}


@dataclass
class Stores:
    root: Path
    lake: LakeStorage
    warehouse: Warehouse
    tracking: MlflowTracking

    def resources(self, redis_url: str) -> dict:
        return {
            "lake": self.lake,
            "warehouse": self.warehouse,
            "mlflow": self.tracking,
            "online": OnlineRedis(url=redis_url),
        }


def register_model(tracking: MlflowTracking, features: pl.DataFrame, params: dict, champion: bool) -> str:
    """Train the pipeline on ``features`` and register it (as champion if asked); its version."""
    model = build_pipeline(**params)
    model.fit(model_input(features), features["late"].to_numpy())
    with tracking.activated() as experiment, mlflow.start_run(experiment_id=experiment):
        info = log_model(model, model_input(features.head(50)), tracking.model_name)
    version = str(info.registered_model_version)
    if champion:
        tracking.client().set_registered_model_alias(tracking.model_name, CHAMPION, version)
    return version


@pytest.fixture(scope="session")
def live_stores(tmp_path_factory) -> Stores:
    """Silver of 30 January to 8 March in a Delta lake, gold features of 1 to 8 March in DuckDB, and a
    champion trained on 1 to 7 March, built once for the session (read-only for the tests)."""
    root = tmp_path_factory.mktemp("live")
    lake = LakeStorage(root=str(root / "lake"))
    silver = real_silver(SILVER_FIRST, LIVE_DAY)
    lake.overwrite(catalog.SILVER_FLIGHTS.path, silver["flights"].drop("late"), "test")
    lake.overwrite(catalog.SILVER_WEATHER.path, silver["weather"], "test")
    lake.overwrite(catalog.SILVER_PLANES.path, reference("planes"), "test")
    lake.overwrite(catalog.SILVER_AIRPORTS.path, reference("airports"), "test")
    warehouse = Warehouse(database=str(root / "warehouse.duckdb"))
    features = features_of_days(lake, TRAIN_FIRST, LIVE_DAY)
    days = sorted(features["flight_date"].unique().to_list())
    with warehouse.get_connection() as connection:
        warehouse.replace_days(connection, catalog.FLIGHT_FEATURES.warehouse_table, features, days)
    tracking = MlflowTracking(
        tracking_uri=f"sqlite:///{root / 'mlflow' / 'mlflow.db'}",
        artifact_location=str(root / "mlflow" / "art"),
    )
    register_model(tracking, features.filter(pl.col("flight_date") < LIVE_DAY), SMALL_MODEL, champion=True)
    return Stores(root, lake, warehouse, tracking)


@pytest.fixture
def redis_server(tmp_path):
    """A Redis server of this test's own on loopback, its data (append-only, synced) under tmp_path."""
    server = RedisServer(tmp_path / "redis", free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def store(redis_server) -> OnlineStore:
    return OnlineStore(redis_server.url)


def push_history(stores: Stores, redis_url: str) -> dg.MaterializeResult:
    """Materialize ``online/feature_store`` into the Redis at ``redis_url``."""
    result = dg.materialize([feature_store], resources=stores.resources(redis_url))
    assert result.success
    return result


def gold_of_live_day(stores: Stores) -> pl.DataFrame:
    return read_features(stores.warehouse, LIVE_DAY, LIVE_DAY)


class WorkerThread:
    """The stream worker in a thread of the test, stopped on request."""

    def __init__(self, store: OnlineStore, **options):
        self.worker = StreamWorker(OnlineStore(store.url), **options)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            self.worker.run(stop=self.stop, retry_seconds=60)
        except BaseException as error:  # reported by the test
            self.error = error

    def __enter__(self) -> WorkerThread:
        self.thread.start()
        return self

    def __exit__(self, *_exc):
        self.stop.set()
        self.thread.join(timeout=60)


def wait_caught_up(store, worker: WorkerThread, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not store.caught_up():
        assert worker.error is None, worker.error
        assert time.monotonic() < deadline, f"the worker did not catch up within {seconds:g} s"
        time.sleep(0.2)
