"""A model's lineage, typed: which Delta table versions, feature days and rows, run and code made a
registered version. ``ModelLineage`` is the one place that writes it to MLflow (version tags, and the
Delta tables as MLflow datasets, so the MLflow UI lists each version's input tables and versions) and
reads it back; nothing else parses a tag.

Also: lineage both ways between Delta table versions and registered models, and table maintenance that
will not delete what a registered model needs.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date

import mlflow
from mlflow.data.delta_dataset_source import DeltaDatasetSource
from mlflow.data.meta_dataset import MetaDataset

from lakehouse.lib.model import TrainingWindow
from lakehouse.resources import LakeStorage, MlflowTracking

VERSION_TAG = "delta_version."


def _days(text: str) -> tuple[date, date]:
    first, last = text.split("..")
    return date.fromisoformat(first), date.fromisoformat(last)


@dataclass(frozen=True)
class ModelLineage:
    """What made a model version."""

    input_versions: dict[str, int | None]  # Delta table path: the version training read
    features_table: str
    window: TrainingWindow
    train_rows: int
    train_rows_available: int
    train_every: int  # training took every k-th flight in flight_id order (1: all)
    holdout_rows: int
    content_hash: str
    training_key: str
    dagster_run_id: str
    dagster_asset: str
    code_version: str
    git_commit: str

    # Tag names of the scalar fields; the window and input versions have their own form.
    TAGS = {
        "features_table": "features.table",
        "train_rows": "features.train_rows",
        "train_rows_available": "features.train_rows_available",
        "train_every": "features.train_every",
        "holdout_rows": "features.holdout_rows",
        "content_hash": "features.content_hash",
        "training_key": "training.key",
        "dagster_run_id": "dagster.run_id",
        "dagster_asset": "dagster.asset",
        "code_version": "dagster.code_version",
        "git_commit": "git.commit",
    }

    def to_tags(self) -> dict[str, str]:
        """The lineage as MLflow tags (strings), readable in the MLflow UI."""
        window = self.window
        return {
            **{f"{VERSION_TAG}{t}": str(v) for t, v in self.input_versions.items()},
            "features.train_days": f"{window.train_start}..{window.train_end}",
            "features.holdout_days": f"{window.holdout_start}..{window.holdout_end}",
            **{tag: str(getattr(self, name)) for name, tag in self.TAGS.items()},
        }

    @classmethod
    def from_tags(cls, recorded: dict[str, str]) -> ModelLineage:
        """The lineage recorded in a version's tags. Versions registered before training could thin its
        rows trained on all of them (``features.train_every`` 1)."""
        kinds = {f.name: f.type for f in fields(cls)}
        since = {
            "features.train_every": "1",
            "features.train_rows_available": recorded.get("features.train_rows"),
        }
        tags = since | recorded
        missing = [tag for tag in cls.TAGS.values() if tags.get(tag) is None]
        if missing or "features.train_days" not in tags or "features.holdout_days" not in tags:
            raise LookupError(
                f"the version's tags hold no lineage: {', '.join(missing) or 'no feature days'}"
            )
        scalars = {
            name: int(tags[tag]) if kinds[name] == "int" else tags[tag] for name, tag in cls.TAGS.items()
        }
        versions = {
            tag.removeprefix(VERSION_TAG): None if value == "None" else int(value)
            for tag, value in tags.items()
            if tag.startswith(VERSION_TAG)
        }
        window = TrainingWindow(*_days(tags["features.train_days"]), *_days(tags["features.holdout_days"]))
        return cls(input_versions=versions, window=window, **scalars)

    def log_inputs(self, lake: LakeStorage) -> None:
        """Record each Delta table the training read, at its version, as an input of the active run."""
        for table, version in self.input_versions.items():
            source = DeltaDatasetSource(path=lake.uri(table), delta_table_version=version)
            mlflow.log_input(MetaDataset(source, name=table, digest=f"v{version}"), context="training")


def model_lineage(tracking: MlflowTracking, version: str) -> ModelLineage:
    """The lineage of a registered version."""
    return ModelLineage.from_tags(version_tags(tracking, version))


def version_tags(tracking: MlflowTracking, version: str) -> dict[str, str]:
    """Every tag of a registered version: its lineage, holdout metrics and gate decision."""
    return dict(sorted(tracking.client().get_model_version(tracking.model_name, str(version)).tags.items()))


def models_trained_on(tracking: MlflowTracking, table: str, table_version: int) -> list[str]:
    """The registered versions whose training read ``table`` at ``table_version``."""
    return sorted(
        (v for v, versions in _input_versions(tracking).items() if versions.get(table) == table_version),
        key=int,
    )


def protected_versions(tracking: MlflowTracking, table: str) -> dict[int, list[str]]:
    """Table versions that registered models depend on, each with the model versions that need it."""
    found: dict[int, list[str]] = {}
    for model_version, versions in _input_versions(tracking).items():
        if versions.get(table) is not None:
            found.setdefault(versions[table], []).append(model_version)
    return found


def _input_versions(tracking: MlflowTracking) -> dict[str, dict[str, int | None]]:
    return {
        str(v.version): ModelLineage.from_tags(v.tags).input_versions
        for v in tracking.client().search_model_versions(f"name='{tracking.model_name}'")
    }


class VacuumRefused(RuntimeError):
    """Vacuum would delete files that a registered model's table version needs."""


def safe_vacuum(
    lake: LakeStorage, tracking: MlflowTracking, table: str, retention_hours: int, dry_run: bool
) -> list[str]:
    """Vacuum ``table``, refusing if it would delete a file of a version a registered model was trained on."""
    current = lake.table(table)
    if current is None:
        raise LookupError(f"the Delta table {lake.uri(table)} does not exist")
    doomed = set(
        current.vacuum(retention_hours=retention_hours, dry_run=True, enforce_retention_duration=False)
    )
    # vacuum names files relative to the table, file_uris() absolutely.
    root = current.table_uri.removeprefix("file://").rstrip("/") + "/"
    for version, models in sorted(protected_versions(tracking, table).items()):
        needed = {
            uri.removeprefix("file://").removeprefix(root)
            for uri in lake.table(table, version=version).file_uris()
        }
        lost = doomed & needed
        if lost:
            raise VacuumRefused(
                f"vacuum of {table} would delete {len(lost)} file(s) of version {version}, which "
                f"{tracking.model_name} version(s) {', '.join(sorted(models, key=int))} were trained on; "
                "keep them (a longer --retain-hours) or retire those models first"
            )
    if dry_run:
        return sorted(doomed)
    return current.vacuum(retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False)
