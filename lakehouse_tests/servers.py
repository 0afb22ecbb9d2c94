"""Helpers for the tests that start a real server of their own on loopback (dagster dev, moto's S3)."""

import socket
import subprocess
import time
import urllib.request


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
