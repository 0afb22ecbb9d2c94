"""Helpers for the tests that start a real server of their own on loopback (dagster dev, moto's S3)."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_answers(url: str, server: subprocess.Popen, name: str, seconds: float) -> None:
    """Return once ``url`` answers; fail naming ``name`` if it has not within ``seconds`` or stopped."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            assert time.monotonic() < deadline, f"{name} did not answer within {seconds:g} s"
            assert server.poll() is None, f"{name} stopped"
            time.sleep(0.5)


@contextlib.contextmanager
def _server(command: list[str], project: Path, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    """One of the project's Dagster commands in its own process group, stopped with that group."""
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / command[0]), *command[1:]],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield server
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


@contextlib.contextmanager
def dagster_dev(project: Path, env: dict[str, str]) -> Iterator[str]:
    """`dagster dev` (webserver and daemon) of ``project``'s workspace on a free loopback port, yielding
    its address; stopped with its whole process group (its daemon, code server and runs)."""
    port = free_port()
    command = ["dagster", "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    with _server(command, project, env) as server:
        base = f"http://127.0.0.1:{port}"
        wait_until_answers(f"{base}/server_info", server, "dagster dev", 120)
        yield base


@contextlib.contextmanager
def dagster_webserver(project: Path, env: dict[str, str]) -> Iterator[str]:
    """The Dagster webserver alone (no daemon: no sensor ticks, no queued run starts) on a free port."""
    port = free_port()
    command = ["dagster-webserver", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    with _server(command, project, env) as server:
        base = f"http://127.0.0.1:{port}"
        wait_until_answers(f"{base}/server_info", server, "dagster-webserver", 120)
        yield base


@contextlib.contextmanager
def dagster_daemon(project: Path, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    """The Dagster daemon (sensors, schedules, backfills, the run queue) of ``project``'s workspace."""
    with _server(["dagster-daemon", "run", "-w", "workspace.yaml"], project, env) as daemon:
        yield daemon
