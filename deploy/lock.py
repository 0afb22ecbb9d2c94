"""``make lock``: the lock files every install of the lakehouse is made from, with hashes.

- ``requirements.lock``: every distribution the lakehouse needs at run time (its dependencies and
  theirs), what the image installs;
- ``requirements-dev.lock``: those and the dev extras' closure, what ``make install`` (so ``make demo``,
  ``make test`` and CI) installs.

Each pin is the version installed in this environment (the one the suite passed on) with the sha256 of
the file pip fetches for it here (``pip download``, from the indexes pip is configured with), so
``pip install --require-hashes`` installs exactly those files or stops. The files are CPython 3.11
wheels for Linux x86_64, the platform of CI and the image; on another platform, run ``make lock`` there.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

PROJECT = Path(__file__).resolve().parent.parent
RUNTIME_LOCK = PROJECT / "requirements.lock"
DEV_LOCK = PROJECT / "requirements-dev.lock"
HEADER = "# Written by `make lock` (deploy/lock.py) from the environment `make install` built; do not edit.\n"


def canonical(name: str) -> str:
    return canonicalize_name(name)


def closure(root: str = "lakehouse", extras: frozenset[str] = frozenset()) -> dict[str, str]:
    """Each distribution ``root`` (with ``extras``) needs, by canonical name, with its installed version."""
    found: dict[str, str] = {}
    pending = [(root, extras)]
    while pending:
        name, wanted = pending.pop()
        distribution = metadata.distribution(name)
        key = canonical(distribution.metadata["Name"])
        if key != root:
            found[key] = distribution.version
        for text in distribution.requires or []:
            requirement = Requirement(text)
            environments = [{"extra": extra} for extra in wanted] or [{"extra": ""}]
            if requirement.marker and not any(requirement.marker.evaluate(env) for env in environments):
                continue
            child = canonical(requirement.name)
            if child not in found or requirement.extras:
                pending.append((requirement.name, frozenset(requirement.extras)))
                found.setdefault(child, "")
    return {name: version for name, version in sorted(found.items())}


def runtime_closure() -> dict[str, str]:
    return closure()


def dev_closure() -> dict[str, str]:
    return closure(extras=frozenset({"dev"}))


def pins(path: Path) -> dict[str, str]:
    """The ``name: version`` pins of a lock file (its hash lines skipped)."""
    found = {}
    for line in path.read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\]+)", line):
            found[canonical(match[1])] = match[2]
    return found


def fetched_hashes(pinned: dict[str, str]) -> dict[str, list[str]]:
    """The sha256 of the file pip fetches for each pin here, by canonical name."""
    with tempfile.TemporaryDirectory() as folder:
        requirements = Path(folder) / "pins.txt"
        requirements.write_text("".join(f"{name}=={version}\n" for name, version in pinned.items()))
        download = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
        subprocess.run([*download, "-r", str(requirements), "-d", str(Path(folder) / "files")], check=True)
        hashes: dict[str, list[str]] = {}
        for file in sorted((Path(folder) / "files").iterdir()):
            if file.name.endswith(".whl"):
                name = parse_wheel_filename(file.name)[0]
            else:
                name = parse_sdist_filename(file.name)[0]
            digest = hashlib.sha256(file.read_bytes()).hexdigest()
            hashes.setdefault(canonical(name), []).append(digest)
    missing = sorted(set(pinned) - set(hashes))
    if missing:
        raise RuntimeError(f"pip fetched no file for {', '.join(missing)}")
    return hashes


def text(pinned: dict[str, str], hashes: dict[str, list[str]]) -> str:
    lines = [HEADER]
    for name, version in pinned.items():
        entries = [f"{name}=={version}", *(f"    --hash=sha256:{digest}" for digest in hashes[name])]
        lines.append(" \\\n".join(entries) + "\n")
    return "".join(lines)


def main() -> None:
    runtime, dev = runtime_closure(), dev_closure()
    unpinned = sorted(name for name, version in dev.items() if not version)
    if unpinned:
        raise SystemExit(f"not installed here, so not lockable: {', '.join(unpinned)} (run `make install`)")
    hashes = fetched_hashes(dev)
    RUNTIME_LOCK.write_text(text(runtime, hashes))
    DEV_LOCK.write_text(text(dev, hashes))
    print(f"{len(runtime)} run-time and {len(dev)} dev distributions locked", file=sys.stderr)


if __name__ == "__main__":
    main()
