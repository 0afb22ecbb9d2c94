"""How assets follow their inputs: declarative automation conditions, applied once in definitions.py."""

import dagster as dg

# Eager, for every partition rather than only the latest: a replayed feed lands days in the past, and the
# daemon must rebuild them.
_eager_every_partition = dg.AutomationCondition.eager().without(
    dg.AutomationCondition.in_latest_time_window()
)
_blocking_checks_passed = dg.AutomationCondition.all_deps_blocking_checks_passed()

# Rebuild when an input updates, once no input is missing or running, never past a failed blocking check.
follows_upstream = (_eager_every_partition & _blocking_checks_passed).with_label("follows upstream")

# The same for whole-history assets over daily partitions: days not landed yet are no reason to wait.
follows_any_upstream = (
    _eager_every_partition.without(~dg.AutomationCondition.any_deps_missing()) & _blocking_checks_passed
).with_label("follows any upstream")

# Monitoring judges the champion: it follows its inputs once there is a champion (ml/promotions exists).
follows_champion = (
    follows_any_upstream
    & ~dg.AutomationCondition.any_deps_match(dg.AutomationCondition.missing()).allow(
        dg.AssetSelection.assets(["ml", "promotions"])
    )
).with_label("follows its inputs once a champion exists")
