"""Content-addressed artifact storage: a blob's file name is the sha256 of its bytes.

Blobs are written once (to a temporary file, then renamed into place) and made read-only; a blob that already
exists is never rewritten, so registering identical bytes twice shares one blob. Reading re-hashes the bytes and
refuses a blob whose content no longer matches its name (tampering or disk corruption).
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path

from ..errors import FeatureStoreError

READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.blobs = self.root / "blobs"

    def relpath(self, digest: str) -> str:
        return f"blobs/{digest[:2]}/{digest}"

    def path(self, digest: str) -> Path:
        return self.root / self.relpath(digest)

    def put(self, data: bytes) -> tuple[str, str]:
        """Store `data`; return (sha256, path relative to the store root)."""
        digest = sha256_bytes(data)
        target = self.path(digest)
        if target.exists():
            self.verify(digest)  # an existing blob with other bytes is corruption, not something to paper over
            return digest, self.relpath(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, READ_ONLY)
            try:
                os.link(tmp, target)  # atomic and never replaces an existing file, unlike rename
            except FileExistsError:  # a concurrent writer stored the same bytes first
                self.verify(digest)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return digest, self.relpath(digest)

    def read(self, digest: str, relpath: str | None = None) -> bytes:
        """The blob's bytes, after checking they still hash to `digest`."""
        p = self.root / relpath if relpath else self.path(digest)
        if not p.is_file():
            raise FeatureStoreError(
                f"model artifact blob {p} is missing (expected sha256 {digest})",
                fix="restore the model store directory from backup; blobs are never deleted by the registry",
            )
        data = p.read_bytes()
        actual = sha256_bytes(data)
        if actual != digest:
            raise FeatureStoreError(
                f"INTEGRITY ERROR: model artifact {p} was modified after registration "
                f"(registered sha256 {digest}, file now hashes to {actual}); refusing to load it",
                fix="restore the original blob from backup, or register the model again from a trusted artifact",
            )
        return data

    def verify(self, digest: str, relpath: str | None = None) -> None:
        self.read(digest, relpath)
