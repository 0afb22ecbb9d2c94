"""Gold marts over every departure so far: one DuckDB query each over ``gold.departures``, rebuilt each
time. The query runs inside DuckDB, which spills to disk past its memory limit; no history passes
through Python, and the days a run adds were already written by ``gold/departures``.
"""

import dagster as dg

from lakehouse import catalog, quality
from lakehouse.catalog import DEPARTURES, Table
from lakehouse.lib import marts
from lakehouse.metadata import warehouse_metadata
from lakehouse.resources import WAREHOUSE_POOL, Warehouse

# Each whole-history mart's query, by table name.
QUERIES = {
    catalog.CARRIER_MONTHLY_PERFORMANCE.name: marts.CARRIER_MONTHLY_PERFORMANCE,
    catalog.ROUTE_PERFORMANCE.name: marts.ROUTE_PERFORMANCE,
    catalog.WEATHER_DELAY_IMPACT.name: marts.WEATHER_DELAY_IMPACT,
}


def whole_history_mart(table: Table) -> dg.AssetsDefinition:
    sql = QUERIES[table.name]

    @table.asset(pool=WAREHOUSE_POOL, code_version="2")
    def _asset(warehouse: Warehouse) -> dg.MaterializeResult:
        with warehouse.get_connection() as connection:
            if not warehouse.exists(connection, DEPARTURES.warehouse_table):
                raise dg.Failure(
                    f"{DEPARTURES.warehouse_table} does not exist in {warehouse.database}: materialize "
                    f"{DEPARTURES.path} for the days to aggregate, then {table.path}."
                )
            connection.execute(
                f"CREATE OR REPLACE TEMP VIEW flights AS SELECT * FROM {DEPARTURES.warehouse_table}"
            )
            mart = connection.sql(sql).pl()
            departures_read = connection.execute("SELECT count(*) FROM flights").fetchall()[0][0]
            total = warehouse.replace_rows(connection, table.warehouse_table, mart, "TRUE", [])
        return dg.MaterializeResult(
            metadata=warehouse_metadata(mart, table.warehouse_table, mart.height, total, warehouse.database)
            | {"departures_aggregated": departures_read},
            check_results=[quality.schema_check(table.key, mart, table.contract)],
        )

    return _asset


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[whole_history_mart(t) for t in catalog.layer("gold") if t.upstream == (DEPARTURES,)]
    )
