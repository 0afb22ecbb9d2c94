"""Submit a backfill of a job's assets to a running Dagster (the UI's "Materialize" over a range of days)
and follow it to the end.

A backfill is Dagster's own: the daemon (started by ``dagster dev``, or the chart's daemon on a cluster)
splits the range into runs by the assets' backfill policy (one run, or runs of at most
``LAKEHOUSE_BACKFILL_DAYS`` days), and the run queue starts them side by side up to the instance's run
limit (``concurrency.runs.max_concurrent_runs`` in ``dagster.yaml``), gold steps one at a time on the
``warehouse`` pool. It is submitted and read through the webserver's GraphQL API, the one the UI uses.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import dagster as dg

# A backfill's states that end it, and which of them mean every run succeeded.
FINISHED = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
SUCCEEDED = {"COMPLETED", "COMPLETED_SUCCESS"}
BACKFILL_TAG = "dagster/backfill"

LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on Error { message }
  }
}
"""
INSTIGATORS = """
query Instigators {
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes {
        sensors { name sensorState { id selectorId status } }
        schedules { name scheduleState { id selectorId status } }
      }
    }
  }
}
"""
STOP_SENSOR = """
mutation Stop($id: String!, $selector: String!) {
  stopSensor(id: $id, jobSelectorId: $selector) { __typename ... on Error { message } }
}
"""
STOP_SCHEDULE = """
mutation Stop($id: String!, $selector: String!) {
  stopRunningSchedule(id: $id, scheduleSelectorId: $selector) { __typename ... on Error { message } }
}
"""
STATUS = """
query Status($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status runs(limit: 10000) { runId status } error { message } }
    ... on Error { message }
  }
}
"""


class BackfillError(RuntimeError):
    """The backfill could not be submitted or followed; the message says what and where."""


@dataclass(frozen=True)
class Progress:
    status: str
    runs: dict[str, int]  # run status -> how many
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def succeeded(self) -> bool:
        return self.status in SUCCEEDED and set(self.runs) <= {"SUCCESS"}

    def line(self) -> str:
        counted = ", ".join(f"{n} {status.lower()}" for status, n in sorted(self.runs.items()))
        return f"{self.status.lower()}: {sum(self.runs.values())} run(s){', ' + counted if counted else ''}"


def days(start: date, through: date) -> list[str]:
    """The daily partition keys of ``start``..``through``; ``ValueError`` if the range is reversed."""
    if through < start:
        raise ValueError(f"--through {through} is before --from {start}")
    return [(start + timedelta(days=n)).isoformat() for n in range((through - start).days + 1)]


def job_assets(job: str) -> dict[dg.AssetKey, bool]:
    """The assets job ``job`` of the project's definitions materializes, each with whether it is daily;
    ``ValueError`` naming the jobs that exist if there is no such job."""
    from lakehouse.definitions import defs

    definitions = defs()
    graph = definitions.resolve_asset_graph()
    # The jobs `define_asset_job` made carry their asset selection.
    jobs = {j.name: j.selection for j in definitions.jobs or [] if hasattr(j, "selection")}
    if job not in jobs:
        raise ValueError(f"no asset job {job!r}: the jobs are {', '.join(sorted(jobs))}")
    return {key: graph.get(key).partitions_def is not None for key in sorted(jobs[job].resolve(graph))}


class Dagster:
    """The GraphQL API of the Dagster webserver at ``url``."""

    def __init__(self, url: str, timeout: float = 60.0):
        self.url, self.timeout = url.rstrip("/"), timeout

    def query(self, document: str, variables: dict) -> dict:
        body = json.dumps({"query": document, "variables": variables}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as error:
            raise BackfillError(f"{self.url}/graphql answered {error.code}: {error.read()[:300]!r}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise BackfillError(
                f"no Dagster webserver answers at {self.url} ({reason}): start `make dev` or pass --url"
            ) from None
        if answer.get("errors"):
            raise BackfillError(f"{self.url}/graphql: {answer['errors'][0].get('message')}")
        return answer["data"]

    def submit(self, job: str, assets: dict[dg.AssetKey, bool], partitions: list[str]) -> str:
        """The id of a new backfill of ``assets`` (key: daily?): each daily one over exactly
        ``partitions`` (not the later days Dagster would add for the features' look-back), the others
        once."""
        span = {"range": {"start": partitions[0], "end": partitions[-1]}}
        params = {
            "partitionsByAssets": [
                {"assetKey": {"path": key.path}, "partitions": span if daily else None}
                for key, daily in assets.items()
            ],
            "title": f"{job} {partitions[0]}..{partitions[-1]}",
            "description": f"`lakehouse backfill {job}`: {len(partitions)} day(s) of {len(assets)} asset(s)",
        }
        answer = self.query(LAUNCH, {"params": params})["launchPartitionBackfill"]
        if answer["__typename"] != "LaunchBackfillSuccess":
            refused = f"{answer['__typename']}: {answer.get('message')}"
            raise BackfillError(f"the backfill of {job} was refused: {refused}")
        return answer["backfillId"]

    def progress(self, backfill_id: str) -> Progress:
        answer = self.query(STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        if answer["__typename"] != "PartitionBackfill":
            raise BackfillError(f"backfill {backfill_id}: {answer['__typename']}: {answer.get('message')}")
        runs: dict[str, int] = {}
        for run in answer["runs"]:
            runs[run["status"]] = runs.get(run["status"], 0) + 1
        error = (answer.get("error") or {}).get("message")
        return Progress(answer["status"], runs, error)

    def stop_automation(self) -> list[str]:
        """Stop every running sensor and schedule (what the UI's switches do) and return their names: a
        measured or tested backfill then runs alone, without the landing sensor or the automation starting
        runs of their own over the same days."""
        stopped = []
        for repository in self.query(INSTIGATORS, {})["repositoriesOrError"]["nodes"]:
            for kind, state_field, mutation in (
                ("sensors", "sensorState", STOP_SENSOR),
                ("schedules", "scheduleState", STOP_SCHEDULE),
            ):
                for instigator in repository[kind]:
                    state = instigator[state_field]
                    if state["status"] != "RUNNING":
                        continue
                    variables = {"id": state["id"], "selector": state["selectorId"]}
                    [answer] = self.query(mutation, variables).values()
                    if "message" in answer:
                        raise BackfillError(f"{instigator['name']} could not be stopped: {answer['message']}")
                    stopped.append(instigator["name"])
        return stopped

    def follow(
        self,
        backfill_id: str,
        on_progress: Callable[[Progress], None],
        poll_seconds: float = 2.0,
        timeout_seconds: float | None = None,
    ) -> Progress:
        """Poll the backfill until it finishes (or ``timeout_seconds`` pass: ``BackfillError``)."""
        deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
        while True:
            progress = self.progress(backfill_id)
            on_progress(progress)
            if progress.finished:
                return progress
            if deadline is not None and time.monotonic() > deadline:
                raise BackfillError(
                    f"backfill {backfill_id} still {progress.line()} after {timeout_seconds} s"
                )
            time.sleep(poll_seconds)
