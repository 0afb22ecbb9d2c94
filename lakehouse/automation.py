"""How assets follow their inputs: declarative automation conditions, applied once in definitions.py."""

import dagster as dg

from lakehouse import catalog

# Every ingestion run refreshes the reference tables (an unchanged MERGE is still a materialization).
# Daily assets do not rebuild their whole history for that: a corrected reference table is a deliberate
# backfill, not an automatic one.
REFERENCE_TABLES = dg.AssetSelection.assets(
    *(t.key for t in catalog.layer("silver") if not t.daily and t.transform is not None)
)


def _eager_every_partition(ignore: dg.AssetSelection | None = None, wait_for_missing: bool = True):
    """Dagster's eager condition for every partition, not only the latest: a replayed feed lands days in
    the past, and the daemon must build them. Updates of ``ignore`` do not count."""
    updated = dg.AutomationCondition.any_deps_updated()
    if ignore is not None:
        updated = updated.ignore(ignore)
    condition = (
        (dg.AutomationCondition.newly_missing() | updated).since_last_handled()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
        & dg.AutomationCondition.all_deps_blocking_checks_passed()
    )
    return condition & ~dg.AutomationCondition.any_deps_missing() if wait_for_missing else condition


# Daily assets: rebuild a day when its daily inputs update, once none is missing or running, never past a
# failed blocking check.
follows_upstream = _eager_every_partition(ignore=REFERENCE_TABLES).with_label("follows daily inputs")

# Whole-history assets over daily partitions: days not landed yet are no reason to wait.
follows_any_upstream = _eager_every_partition(wait_for_missing=False).with_label("follows any input")

# Monitoring judges the champion: it follows its inputs once there is a champion (ml/promotions exists).
follows_champion = (
    _eager_every_partition(wait_for_missing=False)
    & ~dg.AutomationCondition.any_deps_match(dg.AutomationCondition.missing()).allow(
        dg.AssetSelection.assets(catalog.PROMOTIONS.key)
    )
).with_label("follows its inputs once a champion exists")

# Predictions follow new features, not new champions: what a model predicted stays what it predicted.
follows_new_features = _eager_every_partition(
    ignore=REFERENCE_TABLES | dg.AssetSelection.assets(catalog.PROMOTIONS.key)
).with_label("follows new features")
