"""The sources as external assets: what lands and what the operational database holds.

Nothing in Dagster materializes these; they put the landing files and source tables at the root of
the lineage graph, so a reader sees where every bronze table comes from.
"""

import dagster as dg

from lakehouse import catalog
from lakehouse.partitions import daily_partitions


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[
            dg.AssetSpec(
                key=table.key,
                description=table.description,
                group_name=table.layer,
                kinds=set(table.kinds),
                partitions_def=daily_partitions() if table.daily else None,
            )
            for table in catalog.layer("sources")
        ]
    )
