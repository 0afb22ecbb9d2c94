"""``deploy/``, checked offline: the Helm values against the dagster/dagster chart's own schema, the image
(non-root, locked dependencies, the code location's module), the lock against the project's requirements,
and the Kubernetes manifests (pinned images, probes on real endpoints, services that select their pods,
the autoscaler on the service)."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import dagster as dg
import jsonschema
import pytest
import yaml
from packaging.requirements import Requirement

from deploy.lock import DEV_LOCK, RUNTIME_LOCK, canonical, dev_closure, pins, runtime_closure
from lakehouse.cli import main as cli

PROJECT = Path(__file__).resolve().parents[2]
DEPLOY = PROJECT / "deploy"
PYPROJECT = tomllib.loads((PROJECT / "pyproject.toml").read_text())
MAKEFILE = (PROJECT / "Makefile").read_text()
# A pin of a lock file and its hashes: `name==version \` then `    --hash=sha256:<64 hex>` lines.
HASHED_PIN = re.compile(r"^\S+==\S+(?: \\\n    --hash=sha256:[0-9a-f]{64})+$", flags=re.MULTILINE)
IMAGE = f"lakehouse:{PYPROJECT['project']['version']}"


def manifests() -> list[dict]:
    return [
        doc
        for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
    ]


def workloads() -> list[dict]:
    return [doc for doc in manifests() if doc["kind"] in ("Deployment", "StatefulSet")]


def test_the_helm_values_follow_the_charts_schema():
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    schema = yaml.safe_load((DEPLOY / "helm" / "dagster-chart-schema.json").read_text())
    jsonschema.Draft7Validator(schema).validate(values)
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    [location] = values["dagster-user-deployments"]["deployments"]
    assert f"{location['image']['repository']}:{location['image']['tag']}" == IMAGE
    assert location["dagsterApiGrpcArgs"] == ["-m", PYPROJECT["tool"]["dagster"]["module_name"]]
    # The chart's version is Dagster's: the one the project runs.
    pinned = re.search(r"--version (\S+)", (DEPLOY / "helm" / "values.yaml").read_text()).group(1)
    assert pinned == metadata.version("dagster")


def test_the_schema_refuses_what_the_chart_refuses():
    schema = yaml.safe_load((DEPLOY / "helm" / "dagster-chart-schema.json").read_text())
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    del values["runLauncher"]["config"]["k8sRunLauncher"]["envVars"]
    with pytest.raises(jsonschema.ValidationError, match="is not valid under any of the given schemas"):
        jsonschema.Draft7Validator(schema).validate(values)
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    values["runLauncher"]["type"] = "K8sRunLaunchr"
    with pytest.raises(jsonschema.ValidationError, match="is not one of"):
        jsonschema.Draft7Validator(schema).validate(values)


def test_the_image_runs_as_a_user_with_locked_dependencies():
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE)
    assert stages and all(re.fullmatch(r"python:3\.11\.\d+-slim-\w+", stage) for stage in stages)
    final = text.rsplit("FROM ", 1)[1]
    user = re.search(r"^USER (\S+)", final, flags=re.MULTILINE).group(1)
    assert user.isdigit() and int(user) > 0
    # The image's install step is the one `make install` (so CI) takes, with the run-time lock.
    make_install = re.search(r"pip install --quiet (--require-hashes -r )requirements-dev\.lock", MAKEFILE)
    assert make_install and f"{make_install[1]}requirements.lock" in text and "pip check" in text
    module = PYPROJECT["tool"]["dagster"]["module_name"]
    assert f'"dagster", "api", "grpc", "-m", "{module}"' in text and '"-p", "3030"' in text
    assert f"-t {IMAGE}" in text


def test_the_locks_pin_and_hash_what_the_suite_runs_on_within_the_projects_ranges():
    runtime, dev = pins(RUNTIME_LOCK), pins(DEV_LOCK)
    assert runtime == runtime_closure(), "requirements.lock is stale: run `make lock`"
    assert dev == dev_closure(), "requirements-dev.lock is stale: run `make lock`"
    for lock, pinned in ((RUNTIME_LOCK, runtime), (DEV_LOCK, dev)):
        assert len(HASHED_PIN.findall(lock.read_text())) == len(pinned), f"{lock.name}: a pin without hash"
    for text in metadata.requires("lakehouse"):
        requirement = Requirement(text)
        lock = runtime if not requirement.marker or requirement.marker.evaluate({"extra": ""}) else dev
        assert requirement.specifier.contains(lock[canonical(requirement.name)], prereleases=True), text
    assert not {"pytest", "ruff", "moto", "schemathesis", "playwright"} & set(runtime)
    assert set(runtime) < set(dev)


def test_every_workload_is_pinned_bounded_and_not_root():
    for workload in workloads():
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, workload["metadata"]["name"]
        for container in pod["containers"]:
            image = container["image"]
            assert ":" in image and not image.endswith(":latest"), image
            assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
            assert "livenessProbe" in container or "readinessProbe" in container, container["name"]
        assert (
            workload["spec"]["selector"]["matchLabels"].items()
            <= workload["spec"]["template"]["metadata"]["labels"].items()
        )


def test_services_select_pods_and_ports_that_exist():
    pods = {w["metadata"]["name"]: w["spec"]["template"] for w in workloads()}
    for service in (d for d in manifests() if d["kind"] == "Service"):
        selected = [
            t for t in pods.values() if service["spec"]["selector"].items() <= t["metadata"]["labels"].items()
        ]
        assert len(selected) == 1, service["metadata"]["name"]
        ports = {p["containerPort"] for c in selected[0]["spec"]["containers"] for p in c.get("ports", [])}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports, service["metadata"]["name"]


def test_the_live_path_runs_the_projects_commands_with_probes_on_its_endpoints():
    by_name = {w["metadata"]["name"]: w["spec"]["template"]["spec"]["containers"][0] for w in workloads()}
    serve, stream = by_name["lakehouse-serve"], by_name["lakehouse-stream"]
    for container in (serve, stream):
        assert container["image"] == IMAGE
        assert container["command"][0] == "lakehouse" and container["command"][1] in cli.commands
    assert serve["command"][1:] == ["serve", "--host", "0.0.0.0", "--port", "8000"]
    probe = " ".join(serve["readinessProbe"]["exec"]["command"])
    assert "http://127.0.0.1:8000/health" in probe and "LAKEHOUSE_SERVE_TOKEN" in probe
    assert by_name["mlflow"]["readinessProbe"]["httpGet"] == {"path": "/health", "port": 5000}
    [autoscaler] = [d for d in manifests() if d["kind"] == "HorizontalPodAutoscaler"]
    assert autoscaler["spec"]["scaleTargetRef"]["name"] == "lakehouse-serve"
    assert autoscaler["spec"]["minReplicas"] >= 2


def test_the_charts_instance_queues_runs_and_keeps_the_warehouse_pool_at_one(tmp_path: Path):
    # The instance the chart writes from the values (its run-coordinator template, with no config of its
    # own here, and the added config as is) is the one lakehouse/dagster.yaml describes.
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["type"] == "QueuedRunCoordinator" and not coordinator["config"]["queuedRunCoordinator"]
    instance = {
        "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator"},
        **values["additionalInstanceConfig"],
    }
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(instance))
    local = yaml.safe_load((PROJECT / "lakehouse" / "dagster.yaml").read_text())
    assert values["additionalInstanceConfig"]["concurrency"] == local["concurrency"]
    with dg.DagsterInstance.from_config(str(tmp_path)) as loaded:
        assert type(loaded.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert loaded.get_concurrency_config().run_queue_config.max_concurrent_runs == 4
        assert loaded.get_concurrency_config().pool_config.default_pool_limit == 1
