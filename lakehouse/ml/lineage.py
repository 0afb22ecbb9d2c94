"""Lineage both ways between Delta table versions and registered models; reproducing a model from
Delta time travel; table maintenance that will not delete what a registered model needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from lakehouse.lib.features import HISTORY_LOOKBACK_DAYS, flight_features, with_outcomes
from lakehouse.lib.model import LABEL, TrainingWindow, build_pipeline, model_input, scores_of
from lakehouse.lib.silver import airport_zones
from lakehouse.ml import registry
from lakehouse.ml.assets import TRAIN_EVERY_TAG, content_hash, split
from lakehouse.resources import LakeStorage, MlflowTracking

VERSION_TAG = "delta_version."


def model_lineage(tracking: MlflowTracking, version: str) -> dict[str, str]:
    """The tags recorded with a registered version: table versions, feature days, run, code, gate."""
    return dict(sorted(tracking.client().get_model_version(tracking.model_name, str(version)).tags.items()))


def models_trained_on(tracking: MlflowTracking, table: str, table_version: int) -> list[str]:
    """The registered versions whose training read ``table`` at ``table_version``."""
    versions = tracking.client().search_model_versions(f"name='{tracking.model_name}'")
    return sorted(
        (str(v.version) for v in versions if v.tags.get(f"{VERSION_TAG}{table}") == str(table_version)),
        key=int,
    )


def protected_versions(tracking: MlflowTracking, table: str) -> dict[int, list[str]]:
    """Table versions that registered models depend on, each with the model versions that need it."""
    found: dict[int, list[str]] = {}
    for version in tracking.client().search_model_versions(f"name='{tracking.model_name}'"):
        recorded = version.tags.get(f"{VERSION_TAG}{table}")
        if recorded not in (None, "None"):
            found.setdefault(int(recorded), []).append(str(version.version))
    return found


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
                "keep them "
                "(a longer --retain-hours) or retire those models first"
            )
    if dry_run:
        return sorted(doomed)
    return current.vacuum(retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False)


@dataclass(frozen=True)
class Reproduction:
    version: str
    window: TrainingWindow
    hash_recorded: str
    hash_rebuilt: str
    holdout_rows: int
    max_difference: float

    @property
    def identical(self) -> bool:
        return self.hash_recorded == self.hash_rebuilt and self.max_difference == 0.0


def _days(text: str) -> tuple[date, date]:
    first, last = text.split("..")
    return date.fromisoformat(first), date.fromisoformat(last)


def reproduce(tracking: MlflowTracking, lake: LakeStorage, version: str) -> Reproduction:
    """Rebuild a version's training set from silver at the recorded Delta versions (time travel),
    retrain with its recorded parameters and compare its holdout predictions with the registered model's."""
    tags = model_lineage(tracking, version)
    model_version = tracking.client().get_model_version(tracking.model_name, str(version))
    params = tracking.client().get_run(model_version.run_id).data.params
    train_days, holdout_days = _days(tags["features.train_days"]), _days(tags["features.holdout_days"])
    window = TrainingWindow(*train_days, *holdout_days)

    def at_version(table: str) -> pl.LazyFrame:
        return lake.scan(table, version=int(tags[f"{VERSION_TAG}{table}"]))

    start = window.train_start - timedelta(days=HISTORY_LOOKBACK_DAYS)
    history = with_outcomes(
        at_version("silver/flights").filter(pl.col("flight_date").is_between(start, window.holdout_end))
    )
    features = flight_features(
        history.filter(pl.col("flight_date").is_between(window.train_start, window.holdout_end)),
        history,
        at_version("silver/weather"),
        at_version("silver/planes"),
        airport_zones(at_version("silver/airports").collect()),
    ).collect()
    train, holdout = split(features, window, int(tags.get(TRAIN_EVERY_TAG, "1")))
    model = build_pipeline(
        learning_rate=float(params["learning_rate"]),
        max_iter=int(params["max_iter"]),
        max_leaf_nodes=int(params["max_leaf_nodes"]),
        l2_regularization=float(params["l2_regularization"]),
    )
    model.fit(model_input(train), train[LABEL].to_numpy())
    rebuilt = scores_of(model, holdout)
    registered = scores_of(registry.load_model(tracking, version), holdout)
    return Reproduction(
        version=str(version),
        window=window,
        hash_recorded=tags["features.content_hash"],
        hash_rebuilt=content_hash(pl.concat([train, holdout])),  # rechunk=False: no copy
        holdout_rows=holdout.height,
        max_difference=float(np.max(np.abs(rebuilt - registered))) if len(rebuilt) else 0.0,
    )
