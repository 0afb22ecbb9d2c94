"""``make lock``: ``deploy/requirements.lock``, the exact versions of every distribution the lakehouse
needs at run time (its dependencies and theirs, not the dev extras), as installed in this environment.
The image installs exactly these, without resolving (``pip install --no-deps``)."""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

LOCK = Path(__file__).with_name("requirements.lock")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_closure(root: str = "lakehouse") -> dict[str, str]:
    """Each distribution ``root`` needs at run time, by canonical name, with its installed version."""
    found: dict[str, str] = {}
    pending = [(root, frozenset())]
    while pending:
        name, extras = pending.pop()
        distribution = metadata.distribution(name)
        key = canonical(distribution.metadata["Name"])
        if key != root:
            found[key] = distribution.version
        for text in distribution.requires or []:
            requirement = Requirement(text)
            environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            if requirement.marker and not any(requirement.marker.evaluate(env) for env in environments):
                continue
            child = canonical(requirement.name)
            if child not in found or requirement.extras:
                pending.append((requirement.name, frozenset(requirement.extras)))
                found.setdefault(child, "")
    return {name: version for name, version in sorted(found.items())}


def main() -> None:
    pins = runtime_closure()
    header = (
        "# Written by `make lock` (deploy/lock.py) from the environment `make install` built; do not edit.\n"
    )
    LOCK.write_text(header + "".join(f"{name}=={version}\n" for name, version in pins.items()))
    print(f"{len(pins)} distributions pinned in {LOCK}", file=sys.stderr)


if __name__ == "__main__":
    main()
