"""Online: the request log that ``lakehouse serve`` writes (not materialized by Dagster, shown in the graph
so ``ml/serving_skew``'s lineage reaches the service)."""

import dagster as dg

from lakehouse.catalog import ONLINE_REQUESTS


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[
            dg.AssetSpec(
                ONLINE_REQUESTS.key,
                description=ONLINE_REQUESTS.description,
                group_name=ONLINE_REQUESTS.layer,
                kinds=set(ONLINE_REQUESTS.kinds),
                deps=[t.key for t in ONLINE_REQUESTS.upstream],
            )
        ]
    )
