"""Files in a landing zone that may be a local folder or an object-store prefix (``s3://``, ``gs://``).

pyarrow's file systems give one interface to both, so the landing sensor and the bronze assets run
unchanged against a laptop folder or a bucket.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pyarrow import fs as pafs


@dataclass(frozen=True)
class LandedFile:
    """A file in the landing zone: its path relative to the zone, size and last modification."""

    path: str
    size: int
    modified_at: datetime


def _is_uri(location: str) -> bool:
    return "://" in location


class FileStore:
    """A folder or object-store prefix, addressed by paths relative to it."""

    def __init__(self, location: str):
        if _is_uri(location) and not location.startswith("file://"):
            self._fs, self._base = pafs.FileSystem.from_uri(location)
        else:
            local = Path(location.removeprefix("file://")).expanduser().resolve()
            self._fs, self._base = pafs.LocalFileSystem(), local.as_posix()
        self.location = location

    def _full(self, path: str) -> str:
        return f"{self._base.rstrip('/')}/{path.lstrip('/')}"

    def describe(self, path: str) -> str:
        """The full location of ``path``, for messages."""
        return f"{self.location.rstrip('/')}/{path}"

    def list(self, folder: str, suffix: str) -> list[LandedFile]:
        """Files directly in ``folder`` ending in ``suffix``, sorted by path; none if it is absent."""
        selector = pafs.FileSelector(self._full(folder), allow_not_found=True, recursive=False)
        prefix = f"{self._base.rstrip('/')}/"
        found = [
            LandedFile(
                path=info.path.removeprefix(prefix),
                size=info.size,
                modified_at=(info.mtime or datetime.fromtimestamp(0)).astimezone(UTC),
            )
            for info in self._fs.get_file_info(selector)
            if info.type == pafs.FileType.File and info.base_name.endswith(suffix)
        ]
        return sorted(found, key=lambda f: f.path)

    def exists(self, path: str) -> bool:
        return self._fs.get_file_info(self._full(path)).type == pafs.FileType.File

    def read_bytes(self, path: str) -> bytes:
        with self._fs.open_input_stream(self._full(path)) as stream:
            return stream.read()

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write ``data`` so that a reader sees the old file or the new one, never half of it."""
        full = self._full(path)
        self._fs.create_dir(full.rsplit("/", 1)[0], recursive=True)
        temporary = f"{full}.{uuid.uuid4().hex}.partial"
        with self._fs.open_output_stream(temporary) as out:
            out.write(data)
        self._fs.move(temporary, full)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
