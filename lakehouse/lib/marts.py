"""The gold marts as DuckDB SQL over ``flights``: a day's silver flights for the daily mart, every row of
``gold.departures`` (silver's flights with the weather at departure) for the others.

On time follows the US DOT: arrived less than 15 minutes after schedule. Rates are over all
scheduled flights, so a cancelled or diverted flight counts as not on time. Delays are over flights
that operated (null delays are not counted).
"""

from __future__ import annotations

# Both quantiles of a column come from one list-valued aggregate: DuckDB then keeps one copy of the
# column's values per group, not one per quantile. Separate median() and quantile_cont() calls over 34
# million rows (N = 100) ran out of a 2 GB memory limit; the list form takes 2 s and 0.7 GB.
# (median is the interpolated 0.5 quantile, as quantile_cont computes it.)
PERFORMANCE_MEASURES = """
    count(*)                                                     AS scheduled,
    count(*) FILTER (WHERE cancelled)                            AS cancelled,
    count(*) FILTER (WHERE diverted)                             AS diverted,
    avg(CASE WHEN arr_delay < 15 AND NOT cancelled AND NOT diverted THEN 1.0 ELSE 0.0 END) AS on_time_rate,
    avg(CASE WHEN cancelled THEN 1.0 ELSE 0.0 END)               AS cancellation_rate,
    avg(dep_delay)                                               AS mean_dep_delay,
    quantile_cont(dep_delay, [0.5, 0.9])                         AS dep_delay_quantiles,
    avg(arr_delay)                                               AS mean_arr_delay,
    quantile_cont(arr_delay, [0.5, 0.9])                         AS arr_delay_quantiles
"""

PERFORMANCE_COLUMNS = """
    scheduled, cancelled, diverted, on_time_rate, cancellation_rate,
    mean_dep_delay, dep_delay_quantiles[1] AS median_dep_delay, dep_delay_quantiles[2] AS p90_dep_delay,
    mean_arr_delay, arr_delay_quantiles[1] AS median_arr_delay, arr_delay_quantiles[2] AS p90_arr_delay
"""


def _performance(keys: str, grouped_by: str, order: str) -> str:
    """The performance measures of ``flights`` per group: ``grouped_by`` defines the ``keys``."""
    return f"""
SELECT {keys}, {PERFORMANCE_COLUMNS}
FROM (SELECT {grouped_by}, {PERFORMANCE_MEASURES} FROM flights GROUP BY ALL)
ORDER BY {order}
"""


DAILY_AIRPORT_PERFORMANCE = _performance("origin, flight_date", "origin, flight_date", "flight_date, origin")

CARRIER_MONTHLY_PERFORMANCE = _performance(
    "carrier, month", "carrier, CAST(date_trunc('month', flight_date) AS DATE) AS month", "month, carrier"
)

ROUTE_PERFORMANCE = _performance("origin, dest", "origin, dest", "origin, dest")

# Weather at the origin at the scheduled departure hour: the ``visib``, ``wind_speed`` and ``precip`` of
# ``gold.departures``.
WEATHER_BANDS = {
    "visibility": """CASE WHEN visib IS NULL THEN 'unknown' WHEN visib < 1 THEN '0 to 1 mi'
        WHEN visib < 3 THEN '1 to 3 mi' WHEN visib < 5 THEN '3 to 5 mi' ELSE '5 mi or more' END""",
    "wind": """CASE WHEN wind_speed IS NULL THEN 'unknown' WHEN wind_speed < 10 THEN '0 to 10 mph'
        WHEN wind_speed < 20 THEN '10 to 20 mph' WHEN wind_speed < 30 THEN '20 to 30 mph'
        ELSE '30 mph or more' END""",
    "precipitation": """CASE WHEN precip IS NULL THEN 'unknown' WHEN precip = 0 THEN 'none'
        WHEN precip < 0.1 THEN 'light (under 0.1 in/h)' ELSE 'heavy (0.1 in/h or more)' END""",
}

WEATHER_DELAY_IMPACT = (
    " UNION ALL ".join(
        f"""
SELECT '{dimension}' AS condition, {band} AS band,
    count(*) AS flights,
    avg(CASE WHEN arr_delay >= 15 OR cancelled OR diverted THEN 1.0 ELSE 0.0 END) AS late_rate,
    avg(CASE WHEN cancelled THEN 1.0 ELSE 0.0 END) AS cancellation_rate,
    avg(dep_delay) AS mean_dep_delay
FROM flights
GROUP BY band"""
        for dimension, band in WEATHER_BANDS.items()
    )
    + " ORDER BY condition, band"
)
