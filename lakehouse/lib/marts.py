"""The gold marts as DuckDB SQL over ``flights``: a day's silver flights for the daily mart, every row of
``gold.departures`` (silver's flights with the weather at departure) for the others.

On time follows the US DOT: arrived less than 15 minutes after schedule. Rates are over all
scheduled flights, so a cancelled or diverted flight counts as not on time. Delays are over flights
that operated (null delays are not counted).
"""

from __future__ import annotations

PERFORMANCE_MEASURES = """
    count(*)                                                     AS scheduled,
    count(*) FILTER (WHERE cancelled)                            AS cancelled,
    count(*) FILTER (WHERE diverted)                             AS diverted,
    avg(CASE WHEN arr_delay < 15 AND NOT cancelled AND NOT diverted THEN 1.0 ELSE 0.0 END) AS on_time_rate,
    avg(CASE WHEN cancelled THEN 1.0 ELSE 0.0 END)               AS cancellation_rate,
    avg(dep_delay)                                               AS mean_dep_delay,
    median(dep_delay)                                            AS median_dep_delay,
    quantile_cont(dep_delay, 0.9)                                AS p90_dep_delay,
    avg(arr_delay)                                               AS mean_arr_delay,
    median(arr_delay)                                            AS median_arr_delay,
    quantile_cont(arr_delay, 0.9)                                AS p90_arr_delay
"""

DAILY_AIRPORT_PERFORMANCE = f"""
SELECT origin, flight_date, {PERFORMANCE_MEASURES}
FROM flights
GROUP BY origin, flight_date
ORDER BY flight_date, origin
"""

CARRIER_MONTHLY_PERFORMANCE = f"""
SELECT carrier, CAST(date_trunc('month', flight_date) AS DATE) AS month, {PERFORMANCE_MEASURES}
FROM flights
GROUP BY carrier, month
ORDER BY month, carrier
"""

ROUTE_PERFORMANCE = f"""
SELECT origin, dest, {PERFORMANCE_MEASURES}
FROM flights
GROUP BY origin, dest
ORDER BY origin, dest
"""

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
