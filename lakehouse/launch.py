"""Run a job from the terminal so that the UI lists it where it lists the runs it launched itself.

``dg launch`` and ``dagster job execute`` run a job in their own process, which is what a terminal wants
(the run's log on the screen, the exit status of the run). But the run they record belongs to no code
location: the UI's page of a job, its run history and the Overview timeline show a job's runs by the
code-location label Dagster gives to runs it launches (``.dagster/repository``, ``__repository__@<location>``)
and so never show them. ``launch`` runs the job the same way, with Dagster's public ``execute_job``, and
labels the run with the location ``workspace.yaml`` names, the one ``dagster dev`` serves.

While the run works, a progress bar counts its steps and shows the newest line of its log (each long step
writes "chunk k of n, rows so far, rate" there).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import yaml

PROJECT = Path(__file__).resolve().parent.parent
WORKSPACE = PROJECT / "workspace.yaml"
DEFINITIONS_MODULE = "lakehouse.definitions"
# Dagster's own tags: the code-location label of launched runs, and a single-run backfill's range.
LOCATION_TAG = ".dagster/repository"
RANGE_START_TAG, RANGE_END_TAG = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
LAUNCH_TAG = "lakehouse/launch"


def location_label(workspace: Path = WORKSPACE) -> str:
    """``__repository__@<location>`` for the code location ``workspace`` loads the definitions as."""
    try:
        entries = yaml.safe_load(workspace.read_text())["load_from"]
        [location] = [
            entry["python_module"]
            for entry in entries
            if entry.get("python_module", {}).get("module_name") == DEFINITIONS_MODULE
        ]
        return f"__repository__@{location['location_name']}"
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as error:
        raise ValueError(
            f"{workspace}: expected one load_from entry python_module with module_name "
            f"{DEFINITIONS_MODULE} and a location_name ({type(error).__name__}: {error})"
        ) from None


def job_named(name: str) -> dg.JobDefinition:
    """The job ``name`` of the project's definitions (the reconstructor ``execute_job`` calls)."""
    from lakehouse.definitions import defs

    return defs().resolve_job_def(name)


@dataclass(frozen=True)
class Launch:
    job: str
    start: date | None = None
    through: date | None = None
    config_files: Sequence[str] = ()
    log_level: str = "WARNING"

    def run_config(self) -> dict:
        """The config files merged, with the terminal's log level last."""
        config = dg.config_from_files(list(self.config_files)) if self.config_files else {}
        console = {"console": {"config": {"log_level": self.log_level}}}
        return {**config, "loggers": {**config.get("loggers", {}), **console}}

    def check(self) -> str:
        """The run's code-location label; ``ValueError`` naming what is wrong: a half or reversed range,
        or the workspace file."""
        label = location_label()
        if (self.start is None) != (self.through is None) or (self.start and self.start > self.through):
            raise ValueError(f"a partition range needs --from ≤ --through, got {self.start}...{self.through}")
        return label

    def tags(self, launch_id: str) -> dict[str, str]:
        tags = {LOCATION_TAG: self.check(), LAUNCH_TAG: launch_id}
        if self.start is not None and self.through is not None:
            tags |= {RANGE_START_TAG: self.start.isoformat(), RANGE_END_TAG: self.through.isoformat()}
        return tags


@dataclass
class Watch:
    """The steps of the launched run done so far and the newest line of its log, read from the instance."""

    launch_id: str
    run_id: str | None = None
    steps: int = 0
    done: int = 0
    line: str = ""
    cursor: str | None = None

    def poll(self, instance: dg.DagsterInstance) -> None:
        if self.run_id is None:
            runs = instance.get_runs(dg.RunsFilter(tags={LAUNCH_TAG: self.launch_id}), limit=1)
            if not runs:
                return
            self.run_id = runs[0].run_id
            plan = instance.get_execution_plan_snapshot(runs[0].execution_plan_snapshot_id)
            self.steps = len(plan.steps)
        records = instance.get_records_for_run(self.run_id, cursor=self.cursor, limit=1000)
        self.cursor = records.cursor
        for record in records.records:
            entry = record.event_log_entry
            event = entry.dagster_event
            if event is None:
                self.line = entry.user_message.splitlines()[0] if entry.user_message else self.line
            elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_SKIPPED):
                self.done += 1


def launch(
    spec: Launch, instance: dg.DagsterInstance, on_progress: Callable[[Watch], None]
) -> dg.JobExecutionResult:
    """Run ``spec`` in this process on ``instance``, reporting progress about once a second."""
    launch_id = uuid.uuid4().hex
    tags = spec.tags(launch_id)
    run_config = spec.run_config()
    job = dg.build_reconstructable_job(__name__, "job_named", reconstructable_args=(spec.job,))
    stop = threading.Event()
    watch = Watch(launch_id)

    def follow() -> None:
        while not stop.wait(1.0):
            watch.poll(instance)
            on_progress(watch)

    follower = threading.Thread(target=follow, name="launch-progress", daemon=True)
    follower.start()
    try:
        return dg.execute_job(job, instance, run_config=run_config, tags=tags)
    finally:
        stop.set()
        follower.join()
        watch.poll(instance)
        on_progress(watch)
