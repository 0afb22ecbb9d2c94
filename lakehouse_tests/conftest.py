"""Shared fixtures: a few real days landed once per session, and resources under ``tmp_path``.

Tests run against real Delta tables and a real SQLite database in temporary folders, never mocks.
"""

from __future__ import annotations

import shutil
import warnings
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from hypothesis import HealthCheck, settings

from lakehouse.partitions import Chunking
from lakehouse.resources import LakeStorage, MlflowTracking, SourceSystems, Warehouse
from lakehouse.sources.replay import replay

warnings.filterwarnings("ignore", category=dg.BetaWarning)

# Property-based tests: a quick profile in `make test`, the long one in `make fuzz`
# (`--hypothesis-profile=fuzz`). Registered here, before pytest reads the profile option.
FUZZ = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
settings.register_profile("default", max_examples=200, **FUZZ)
settings.register_profile("fuzz", max_examples=5000, **FUZZ)

# Two ordinary January days, the day with the 1,048 mph wind reading, and the day daylight saving ends.
TEST_DAYS = [date(2013, 1, 1), date(2013, 1, 2), date(2013, 2, 12), date(2013, 11, 3)]


@pytest.fixture(scope="session")
def landed_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test days landed by the real replay, shared read-only by the session."""
    root = tmp_path_factory.mktemp("landed")
    for day in TEST_DAYS:
        replay(str(root / "landing"), root / "sources" / "operational.sqlite", day, day)
    return root


@pytest.fixture
def landed(landed_once: Path, tmp_path: Path) -> Path:
    """A private copy of the landed test days that a test may change."""
    target = tmp_path / "data"
    shutil.copytree(landed_once, target)
    return target


@pytest.fixture
def resources(landed: Path) -> dict[str, dg.ConfigurableResource]:
    return resources_at(landed)


def resources_at(landed: Path) -> dict[str, dg.ConfigurableResource]:
    """Resources over a folder laid out like ``data/``."""
    return {
        "sources": SourceSystems(
            landing_uri=str(landed / "landing"), database_path=str(landed / "sources" / "operational.sqlite")
        ),
        "lake": LakeStorage(root=str(landed / "lake")),
        "warehouse": Warehouse(database=str(landed / "warehouse.duckdb")),
        "mlflow": MlflowTracking(
            tracking_uri=f"sqlite:///{landed / 'mlflow' / 'mlflow.db'}",
            artifact_location=str(landed / "mlflow" / "artifacts"),
        ),
        "chunking": Chunking(),
    }


@pytest.fixture
def lake(resources) -> LakeStorage:
    return resources["lake"]
