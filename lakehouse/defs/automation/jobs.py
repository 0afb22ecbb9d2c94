"""Jobs that `dagster job execute`, `dg launch` and the UI launch; each runs in one process (see
``lakehouse.definitions``)."""

import dagster as dg

from lakehouse.catalog import DELAY_MODEL, ONLINE_FEATURE_STORE, PREDICTIONS, PROMOTIONS, SERVING_SKEW


def _layers(*names: str) -> dg.AssetSelection:
    return dg.AssetSelection.groups(*names)


# The live path's assets need its online store (Redis) running: they have jobs of their own.
ONLINE = dg.AssetSelection.assets(ONLINE_FEATURE_STORE.key, SERVING_SKEW.key)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        jobs=[
            dg.define_asset_job(
                "lakehouse_job",
                selection=dg.AssetSelection.all() - ONLINE,
                description="Every asset of the batch path, landing files to the last layer, for a day or "
                "(as one run) a range of days: what `make demo` runs over the whole year.",
            ),
            dg.define_asset_job(
                "ingest_job",
                selection=_layers("bronze", "silver"),
                description="Load landed files into bronze and clean them into silver for a day or a range "
                "of days: what the landing sensor asks for when a day's files arrive.",
            ),
            dg.define_asset_job(
                "gold_job",
                selection=_layers("bronze", "silver", "gold"),
                description="Load, clean and build gold for a day or a range of days; no training or "
                "scoring.",
            ),
            dg.define_asset_job(
                "train_job",
                selection=dg.AssetSelection.assets(DELAY_MODEL.key),
                description=f"Train and register a delay model on its features ({DELAY_MODEL.path} alone, as "
                "`make quality` runs it with a fixed window); the gate is not part of it.",
            ),
            dg.define_asset_job(
                "retrain_job",
                selection=dg.AssetSelection.assets(DELAY_MODEL.key, PROMOTIONS.key),
                description="Train a new delay model and put it through the champion gate: what the retrain "
                "sensor asks for.",
            ),
            dg.define_asset_job(
                "score_job",
                selection=dg.AssetSelection.assets(PREDICTIONS.key),
                description="Score a day's flights with the champion: what the daily schedule asks for.",
            ),
            dg.define_asset_job(
                "online_job",
                selection=dg.AssetSelection.assets(ONLINE_FEATURE_STORE.key),
                description="Push the lake's history to the online store (Redis) for the stream worker: what "
                "`make serve` runs first.",
            ),
            dg.define_asset_job(
                "skew_job",
                selection=dg.AssetSelection.assets(SERVING_SKEW.key),
                description="Compare the scoring service's logged feature vectors with gold/flight_features.",
            ),
        ]
    )
