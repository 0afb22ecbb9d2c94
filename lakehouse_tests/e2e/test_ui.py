"""The Dagster UI in a real browser (Debian's chromium driven by Playwright), against `dagster dev` on a
small demo: five real days landed and every asset materialized by `lakehouse launch`, as `make demo` does.

The tests check what a person sees and save screenshots (to ``$E2E_SCREENSHOTS`` when set, as
`make screenshots` does for the README; else to a temporary folder).
"""

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from lakehouse import catalog
from lakehouse.sources.replay import replay
from lakehouse_tests.servers import dagster_dev

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PROJECT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FIRST, LAST = date(2013, 1, 1), date(2013, 1, 5)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing: `make e2e` installs Debian's chromium"
    ),
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict:
    """A small demo's data and Dagster instance, and its environment."""
    root = tmp_path_factory.mktemp("e2e")
    data, home = root / "data", root / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT / "lakehouse" / "dagster.yaml", home / "dagster.yaml")
    replay(str(data / "landing"), data / "sources" / "operational.sqlite", FIRST, LAST)
    config = root / "demo.yaml"
    config.write_text(json.dumps({"ops": {"ml__delay_model": {"config": {"holdout_days": 1}}}}))
    env = {**os.environ, "DAGSTER_HOME": str(home), "LAKEHOUSE_DATA_DIR": str(data)}
    launched = subprocess.run(
        [
            str(BIN / "lakehouse"),
            "launch",
            "lakehouse_job",
            "--from",
            str(FIRST),
            "--through",
            str(LAST),
            "--config",
            str(config),
        ],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        [run] = instance.get_runs(dg.RunsFilter(job_name="lakehouse_job"))
    return {"home": home, "env": env, "run_id": run.run_id}


@pytest.fixture(scope="module")
def ui(demo) -> str:
    """`dagster dev` (webserver and daemon) on a free loopback port."""
    with dagster_dev(PROJECT, demo["env"]) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, ui):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=ui)
    page = context.new_page()
    page.set_default_timeout(60_000)
    # Dagster's community dialog opens on a first visit, whenever the page is ready: dismissed wherever it
    # shows up, before the action it would block.
    page.add_locator_handler(page.get_by_role("button", name="Skip"), lambda skip: skip.click())
    yield page
    context.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = os.environ.get("E2E_SCREENSHOTS")
    target = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    target.mkdir(parents=True, exist_ok=True)
    return target


def visit(page, path: str) -> None:
    page.goto(path, wait_until="networkidle")


def check_status(page, name: str) -> str:
    """The status the checks list shows for the check ``name``."""
    label = page.get_by_text(name, exact=True).first
    row = label.locator("xpath=ancestor::*[contains(., 'Succeeded') or contains(., 'Failed')][1]")
    words = row.inner_text().split()
    assert set(words) <= {name, "Succeeded", "Failed"}, f"not the row of {name} alone: {words}"
    return "Failed" if "Failed" in words else "Succeeded"


def test_the_lineage_graph_shows_every_layer(page, shots):
    visit(page, "/asset-groups")
    page.get_by_text("Global asset lineage").wait_for()
    for layer in catalog.LAYERS:
        page.get_by_text(layer, exact=True).first.wait_for()
    page.screenshot(path=str(shots / "lineage.png"))


@pytest.mark.parametrize(
    ("table", "metadata"),
    [
        (catalog.BRONZE_FLIGHTS, ["files_loaded", "table_rows_total", "delta_version"]),
        (catalog.SILVER_FLIGHTS, ["days_cleaned", "table_rows_total", "quarantine_delta_version"]),
        (catalog.FLIGHT_FEATURES, ["late_rate", "table_rows_total", "chunks"]),
        (catalog.PREDICTIONS, ["model_version", "mean_probability_late"]),
    ],
    ids=lambda value: getattr(value, "path", None),
)
def test_each_layer_shows_its_metadata_and_checks(page, shots, table, metadata):
    visit(page, f"/assets/{table.path}")
    page.get_by_text("Latest materialization").wait_for()
    for key in metadata:
        page.get_by_text(key, exact=True).first.wait_for()
    if table.checks:
        visit(page, f"/assets/{table.path}?view=checks")
        for check in table.checks:
            page.get_by_text(check.name, exact=True).first.wait_for()
    if table is catalog.SILVER_FLIGHTS:
        assert check_status(page, "row_conservation") == "Succeeded"
        assert check_status(page, "referential_integrity") == "Failed"  # real tails missing from planes
        page.screenshot(path=str(shots / "silver_checks.png"))


def test_the_model_shows_its_metrics_and_its_plots_as_images(page, shots):
    visit(page, f"/assets/{catalog.DELAY_MODEL.path}")
    page.get_by_text("holdout_roc_auc", exact=True).wait_for()
    for plot in ("roc", "calibration", "importance"):
        page.locator("tr").filter(has=page.get_by_text(plot, exact=True)).get_by_text("Show Markdown").click()
        image = page.locator(f"img[alt='{plot}'][src^='data:image/png']")
        image.wait_for()
        assert image.evaluate("img => img.naturalWidth") > 100, plot
        if plot == "roc":
            page.screenshot(path=str(shots / "model.png"))
        page.get_by_role("button", name="Close").click()
        image.wait_for(state="detached")
    visit(page, f"/assets/{catalog.MONITORING.path}")
    page.get_by_text("max_psi", exact=True).wait_for()
    page.screenshot(path=str(shots / "monitoring.png"))


def test_the_demo_run_is_listed_under_its_job(page, shots, demo):
    """The run `make demo` launched from the terminal is in the job's run history, as a UI launch would be."""
    visit(page, "/locations/lakehouse/jobs/lakehouse_job/runs")
    page.get_by_text(demo["run_id"][:8]).first.wait_for()
    page.screenshot(path=str(shots / "job_runs.png"))


def test_the_automation_page_shows_every_sensor_running(page):
    from playwright.sync_api import expect

    visit(page, "/automation")
    for name in (
        "landing_sensor",
        "retrain_sensor",
        "automation_sensor",
        "record_failed_runs",
        "daily_scoring",
    ):
        label = page.get_by_text(name, exact=True).first
        label.wait_for()
        # Each row has two checkboxes: the selection, then the on/off switch.
        row = label.locator("xpath=ancestor::*[.//input[@type='checkbox']][1]")
        # The switch renders before the sensor's state arrives: wait for it, as a person would.
        expect(row.locator("input[type=checkbox]").last).to_be_checked(timeout=30_000)


def test_a_day_materialized_from_the_ui(page, demo):
    table = catalog.DAILY_AIRPORT_PERFORMANCE
    with dg.DagsterInstance.from_config(str(demo["home"])) as instance:
        before = {run.run_id for run in instance.get_runs()}
        visit(page, f"/assets/{table.path}")
        page.get_by_role("button", name="Materialize…").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_placeholder("ex: 2013-01-01").fill("2013-01-03")
        dialog.get_by_placeholder("ex: 2013-01-01").press("Enter")
        dialog.get_by_text("1 partition", exact=True).wait_for()
        dialog.get_by_role("button", name="Launch").last.click()
        deadline = time.monotonic() + 240
        while True:
            runs = [run for run in instance.get_runs() if run.run_id not in before]
            if runs and runs[0].is_finished:
                break
            assert time.monotonic() < deadline, "the run launched from the UI did not finish in 4 minutes"
            time.sleep(2)
        assert runs[0].status == dg.DagsterRunStatus.SUCCESS
        assert runs[0].tags.get("dagster/partition") == "2013-01-03"
        latest = instance.get_latest_materialization_event(table.key)
        assert latest.run_id == runs[0].run_id
    visit(page, f"/assets/{table.path}")
    page.get_by_text("2013-01-03").first.wait_for()
