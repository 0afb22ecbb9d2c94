"""Starting the live path: the service alone (``lakehouse serve``), or with everything it needs
(``lakehouse serve --stack``, what ``make serve`` runs): the embedded Redis unless ``LAKEHOUSE_REDIS_URL``
names another, the lake's history pushed by ``online_job`` (a Dagster run the UI lists), the stream
worker, then the service; all stopped together."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import uvicorn
from threadpoolctl import threadpool_limits

from lakehouse.online.redis_server import EMBEDDED_PORT, EMBEDDED_URL, RedisServer, answers
from lakehouse.online.request_log import RequestLog
from lakehouse.online.service import Champion, Limits, create_app
from lakehouse.online.store import OnlineStore


def lakehouse_command(*arguments: str) -> list[str]:
    return [str(Path(sys.executable).parent / "lakehouse"), *arguments]


def start_stack(stack: ExitStack, redis_url: str, data_dir: Path, say: Callable[[str], None]) -> None:
    """Redis (embedded, if that is the URL and nothing answers there), the history pushed, the worker."""
    if redis_url == EMBEDDED_URL and not answers(redis_url):
        server = RedisServer(data_dir / "redis", EMBEDDED_PORT).start()
        stack.callback(server.stop)
        say(f"started the embedded Redis on {server.url} (data in {server.folder})")
    say("pushing the lake's history to the online store (online_job)")
    if subprocess.run(lakehouse_command("launch", "online_job")).returncode != 0:
        raise RuntimeError("pushing the lake's history failed (online_job, above): run `make demo` first")
    log_path = data_dir / "online" / "stream.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = stack.enter_context(log_path.open("ab"))
    worker = subprocess.Popen(lakehouse_command("stream"), stdout=log, stderr=subprocess.STDOUT)

    def stop_worker() -> None:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()

    stack.callback(stop_worker)
    say(f"stream worker running (pid {worker.pid}, log {log_path})")


def serve(
    host: str,
    port: int,
    poll_seconds: float,
    stack_too: bool,
    say: Callable[[str], None],
    log_requests: bool = True,
) -> None:
    from lakehouse.definitions import resources_from_env
    from lakehouse.resources import default_data_dir
    from lakehouse.settings import current

    settings = current()
    resources = resources_from_env()
    # One thread for the trees: a request scores a few rows, and OpenMP's threads only wait on each other.
    threadpool_limits(1)
    with ExitStack() as stack:
        if stack_too:
            start_stack(stack, settings.redis_url, default_data_dir(), say)
        # A short timeout: a request must not hang on a store that went away; it gets 503 instead.
        store = OnlineStore(settings.redis_url, timeout=1.0)
        champion = Champion(resources["mlflow"], poll_seconds).start()
        request_log = RequestLog(resources["lake"]).start() if log_requests else None
        app = create_app(store, champion, request_log, settings.serve_token, Limits())
        auth = "a bearer token required" if settings.serve_token else "no token (LAKEHOUSE_SERVE_TOKEN unset)"
        # Everything loaded so far (MLflow, scikit-learn, the model) lives as long as the process: moved
        # out of the collector's reach, a full collection does not walk it in the middle of a request.
        gc.freeze()
        model = "none yet" if champion.current is None else f"version {champion.current.version}"
        say(f"serving on http://{host}:{port} (docs at /docs), model {model}, {auth}")
        uvicorn.run(app, host=host, port=port, log_level="warning")
