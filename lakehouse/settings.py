"""The deployment's settings: read once from environment variables and checked at start-up.

Every problem (a misspelt variable, a value that does not parse, a folder that is not there, an
object store without credentials, a tracking server that does not answer) is collected and raised as
one ``ConfigurationError`` when the code location loads, so ``dagster dev``, ``dagster job execute``
and the ``lakehouse`` commands stop before any run starts, with every problem named at once.

Defaults put every store under the project's ``data/`` folder (or ``$LAKEHOUSE_DATA_DIR``), which is
created as needed. A location set explicitly must already make sense: a landing zone or operational
database that does not exist is a wrong path, not something to create. Credentials are never settings:
deltalake, pyarrow and MLflow read them from their own environment variables.
"""

from __future__ import annotations

import difflib
import functools
import os
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import urlparse

PREFIX = "LAKEHOUSE_"
SETTINGS = {
    "LAKEHOUSE_DATA_DIR": "base folder of every default location",
    "LAKEHOUSE_LANDING_URI": "landing zone (folder, s3://, gs://, az://)",
    "LAKEHOUSE_SOURCE_DATABASE": "operational SQLite database",
    "LAKEHOUSE_LAKE_URI": "root of the Delta tables (folder, s3://, gs://, az://)",
    "LAKEHOUSE_WAREHOUSE_PATH": "DuckDB warehouse file",
    "LAKEHOUSE_MLFLOW_ARTIFACTS": "artifact location of the MLflow experiment",
    "LAKEHOUSE_MLFLOW_UI_URL": "address of the MLflow UI that the Dagster UI links to (make dev starts it)",
    "LAKEHOUSE_START_DATE": "first daily partition (YYYY-MM-DD)",
    "LAKEHOUSE_END_DATE": "end of the daily partitions, exclusive (empty: none)",
    "LAKEHOUSE_LANDING_INTERVAL_SECONDS": "how often the landing sensor looks",
    "LAKEHOUSE_RETRAIN_MIN_NEW_DAYS": "new days that make the retrain sensor train",
    "LAKEHOUSE_RETRAIN_COOLDOWN_HOURS": "least time between two retrainings",
    "LAKEHOUSE_BACKFILL_DAYS": "a backfill fans out as runs of at most this many days, run side by side up "
    "to the instance's run limit (0, the default: one run per backfill)",
    "LAKEHOUSE_AMBIENT_CREDENTIALS": "true: object-store credentials come from the machine (instance role)",
    "LAKEHOUSE_REDIS_URL": "the online store and event stream (redis://, rediss://, unix://; default: the "
    "embedded server on 127.0.0.1:6390)",
    "LAKEHOUSE_SERVE_TOKEN": "bearer token every request to `lakehouse serve` must carry (unset: none)",
}
REDIS_SCHEMES = ("redis", "rediss", "unix")
OBJECT_STORES = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"}
# For each object store, the environment variables any one of which is a source of credentials.
CREDENTIALS = {
    "s3": [
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ],
    "gs": ["GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_SERVICE_ACCOUNT", "GOOGLE_SERVICE_ACCOUNT_KEY"],
    "az": [
        "AZURE_STORAGE_ACCOUNT_KEY",
        "AZURE_STORAGE_SAS_TOKEN",
        "AZURE_CLIENT_SECRET",
        "AZURE_STORAGE_USE_EMULATOR",
    ],
}
STORE_FAMILY = {"s3": "s3", "s3a": "s3", "gs": "gs", "gcs": "gs", "az": "az", "abfs": "az", "abfss": "az"}
REACH_TIMEOUT_SECONDS = 3.0


class ConfigurationError(ValueError):
    """The settings cannot work; the message lists every problem, each naming its variable."""

    def __init__(self, problems: list[str]):
        listed = "\n  - ".join(problems)
        super().__init__(
            f"the lakehouse cannot start, {len(problems)} problem(s) in its settings:\n  - {listed}"
        )
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    landing_uri: str
    source_database: str
    lake_uri: str
    warehouse_path: str
    mlflow_tracking_uri: str
    mlflow_artifacts: str
    mlflow_ui_url: str
    start_date: date
    end_date: date | None
    landing_interval_seconds: int
    retrain_min_new_days: int
    retrain_cooldown_hours: float
    backfill_days: int
    redis_url: str
    serve_token: str | None


def project_data_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "data"


class _Reader:
    """Reads variables from ``env``, noting problems instead of raising at the first."""

    def __init__(self, env: dict[str, str]):
        self.env, self.problems = env, []

    def text(self, name: str, default: str) -> tuple[str, bool]:
        """The value and whether it was set explicitly."""
        value = self.env.get(name, "").strip()
        return (value, True) if value else (default, False)

    def number(self, name: str, default: str, kind: type, minimum: float) -> int | float:
        raw, _ = self.text(name, default)
        try:
            value = kind(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r} is not {'a whole number' if kind is int else 'a number'}")
            return kind(default)
        if value < minimum:
            self.problems.append(f"{name}={raw!r} must be at least {minimum}")
        return value

    def day(self, name: str, default: str) -> date | None:
        raw = self.env.get(name, default).strip()
        if not raw:
            return None
        try:
            return date.fromisoformat(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r} is not a date (YYYY-MM-DD)")
            return date.fromisoformat(default) if default else None


def _scheme(uri: str) -> str:
    scheme = urlparse(uri).scheme.lower()
    return "" if len(scheme) <= 1 else scheme  # a Windows drive letter is not a scheme


def _local_path(uri: str) -> Path:
    return Path(urlparse(uri).path) if uri.startswith("file:") else Path(uri)


def _creatable(path: Path) -> str | None:
    """Why a folder or file could not be created at ``path``, or None if it can."""
    ancestor = path
    while not ancestor.exists():
        if ancestor.parent == ancestor:
            break
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{ancestor} is a file, not a folder"
    if not os.access(ancestor, os.W_OK):
        return f"{ancestor} is not writable"
    return None


def _check_location(
    problems: list[str], env: dict[str, str], name: str, uri: str, explicit: bool, kind: str
) -> None:
    """``kind``: ``folder`` or ``file`` (created as needed), or ``existing folder`` or ``existing file``."""
    scheme = _scheme(uri)
    if scheme in OBJECT_STORES:
        _check_object_store(problems, env, name, uri, scheme)
        return
    if scheme not in ("", "file"):
        problems.append(
            f"{name}={uri!r}: unknown scheme {scheme}:// (use a folder or {', '.join(sorted(OBJECT_STORES))})"
        )
        return
    path = _local_path(uri)
    if kind == "existing folder" and explicit and not path.is_dir():
        problems.append(f"{name}={uri!r}: no such folder")
    elif kind == "existing file" and explicit and not path.is_file():
        problems.append(f"{name}={uri!r}: no such file")
    elif kind == "folder" and path.exists() and not path.is_dir():
        problems.append(f"{name}={uri!r} is a file, not a folder")
    elif kind == "file" and path.is_dir():
        problems.append(f"{name}={uri!r} is a folder, not a file")
    elif not path.exists() and (why := _creatable(path)):
        problems.append(f"{name}={uri!r} cannot be created: {why}")


def _check_object_store(problems: list[str], env: dict[str, str], name: str, uri: str, scheme: str) -> None:
    family = STORE_FAMILY[scheme]
    if env.get("LAKEHOUSE_AMBIENT_CREDENTIALS", "").lower() != "true" and not any(
        env.get(variable) for variable in CREDENTIALS[family]
    ):
        problems.append(
            f"{name}={uri!r} needs credentials: set {' or '.join(CREDENTIALS[family][:2])} (or "
            "LAKEHOUSE_AMBIENT_CREDENTIALS=true where the machine has a role)"
        )
    if family == "s3" and env.get("AWS_ACCESS_KEY_ID") and not env.get("AWS_SECRET_ACCESS_KEY"):
        problems.append(f"{name}={uri!r}: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is missing")
    if family == "az" and not env.get("AZURE_STORAGE_ACCOUNT_NAME"):
        problems.append(f"{name}={uri!r} needs AZURE_STORAGE_ACCOUNT_NAME")
    endpoint = env.get("AWS_ENDPOINT_URL") if family == "s3" else None
    if endpoint and (why := _unreachable(endpoint)):
        problems.append(f"{name}={uri!r}: the object store at AWS_ENDPOINT_URL={endpoint} {why}")


def _unreachable(url: str) -> str | None:
    """Why nothing answers at ``url``'s host and port, or None if something does."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "", port), timeout=REACH_TIMEOUT_SECONDS):
            return None
    except OSError as error:
        return f"does not answer ({error.strerror or error})"


def _check_tracking(problems: list[str], uri: str) -> None:
    scheme = _scheme(uri)
    if scheme == "sqlite":
        path = Path(uri.removeprefix("sqlite:///"))
        if path.is_dir() or (not path.exists() and (why := _creatable(path.parent))):
            problems.append(f"MLFLOW_TRACKING_URI={uri!r}: {'a folder' if path.is_dir() else why}")
    elif scheme in ("http", "https"):
        health = uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(health, timeout=REACH_TIMEOUT_SECONDS):
                pass
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            problems.append(
                f"MLFLOW_TRACKING_URI={uri!r}: the tracking server does not answer at {health} ({reason})"
            )
    elif scheme not in ("file", "databricks", "postgresql", "mysql", "mssql"):
        problems.append(
            f"MLFLOW_TRACKING_URI={uri!r}: unknown scheme (use sqlite:///…, http://… or a database URI)"
        )


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """The settings from ``env`` (default: the process environment); raises ``ConfigurationError``."""
    env = dict(os.environ if env is None else env)
    read = _Reader(env)
    for name in sorted(n for n in env if n.startswith(PREFIX) and n not in SETTINGS):
        close = difflib.get_close_matches(name, SETTINGS, n=1)
        hint = f"; did you mean {close[0]}?" if close else f"; known: {', '.join(SETTINGS)}"
        read.problems.append(f"{name} is not a setting of the lakehouse{hint}")

    data_raw, data_explicit = read.text("LAKEHOUSE_DATA_DIR", str(project_data_dir()))
    data = Path(data_raw)
    _check_location(read.problems, env, "LAKEHOUSE_DATA_DIR", data_raw, data_explicit, "folder")
    locations = {
        "LAKEHOUSE_LANDING_URI": (str(data / "landing"), "existing folder"),
        "LAKEHOUSE_SOURCE_DATABASE": (str(data / "sources" / "operational.sqlite"), "existing file"),
        "LAKEHOUSE_LAKE_URI": (str(data / "lake"), "folder"),
        "LAKEHOUSE_WAREHOUSE_PATH": (str(data / "warehouse.duckdb"), "file"),
        "LAKEHOUSE_MLFLOW_ARTIFACTS": (str(data / "mlflow" / "artifacts"), "folder"),
    }
    values = {}
    for name, (default, kind) in locations.items():
        values[name], explicit = read.text(name, default)
        _check_location(read.problems, env, name, values[name], explicit, kind)
    tracking, _ = read.text("MLFLOW_TRACKING_URI", f"sqlite:///{data / 'mlflow' / 'mlflow.db'}")
    _check_tracking(read.problems, tracking)

    redis_url, _ = read.text("LAKEHOUSE_REDIS_URL", "redis://127.0.0.1:6390/0")
    if _scheme(redis_url) not in REDIS_SCHEMES:
        read.problems.append(
            f"LAKEHOUSE_REDIS_URL={redis_url!r}: not a Redis URL "
            f"(use {', '.join(scheme + '://' for scheme in REDIS_SCHEMES)})"
        )

    start = read.day("LAKEHOUSE_START_DATE", "2013-01-01")
    end = read.day("LAKEHOUSE_END_DATE", "2014-01-01")
    if start and end and end <= start:
        read.problems.append(f"LAKEHOUSE_END_DATE={end} is not after LAKEHOUSE_START_DATE={start}")
    settings = Settings(
        landing_uri=values["LAKEHOUSE_LANDING_URI"],
        source_database=values["LAKEHOUSE_SOURCE_DATABASE"],
        lake_uri=values["LAKEHOUSE_LAKE_URI"],
        warehouse_path=values["LAKEHOUSE_WAREHOUSE_PATH"],
        mlflow_tracking_uri=tracking,
        mlflow_artifacts=values["LAKEHOUSE_MLFLOW_ARTIFACTS"],
        mlflow_ui_url=read.text("LAKEHOUSE_MLFLOW_UI_URL", "http://127.0.0.1:5000")[0],
        start_date=start or date(2013, 1, 1),
        end_date=end,
        landing_interval_seconds=read.number("LAKEHOUSE_LANDING_INTERVAL_SECONDS", "30", int, 1),
        retrain_min_new_days=read.number("LAKEHOUSE_RETRAIN_MIN_NEW_DAYS", "7", int, 1),
        retrain_cooldown_hours=read.number("LAKEHOUSE_RETRAIN_COOLDOWN_HOURS", "6", float, 0),
        backfill_days=read.number("LAKEHOUSE_BACKFILL_DAYS", "0", int, 0),
        redis_url=redis_url,
        serve_token=read.text("LAKEHOUSE_SERVE_TOKEN", "")[0] or None,
    )
    if read.problems:
        raise ConfigurationError(read.problems)
    return settings


@functools.cache
def current() -> Settings:
    """The process's settings, checked once."""
    return load_settings()
