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
def dagster_dev(project: Path, env: dict[str, str]) -> Iterator[str]:
    """`dagster dev` (webserver and daemon) of ``project``'s workspace on a free loopback port, yielding
    its address; stopped with its whole process group (its daemon, code server and runs)."""
    port = free_port()
    dagster = str(Path(sys.executable).parent / "dagster")
    server = subprocess.Popen(
        [dagster, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(f"{base}/server_info", server, "dagster dev", 120)
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
