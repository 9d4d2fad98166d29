"""Scoped API keys of the online service: the key file, hashing, and who may read, push or see what.

No HTTP here: the service's edge (fs_cli/server/app.py `_Edge`) authenticates a request with a `KeyRing` and maps
what this module decides to 401 (no valid key) or 403 (`Denied`: a valid key asking outside its scope).

The key file (`<project>/.fs/api_keys.json`, or $FS_API_KEYS_FILE) holds, per key: a name, the SHA-256 of its
secret (the secret itself is printed once by `fs keys create` and stored nowhere), its scopes and created_at.
It is written atomically (temporary file + rename) with mode 0600. Scopes:

- `feature_views` / `feature_groups`: what the key may read ("*" = all). A feature view is readable when it is
  listed, or when every feature group it reads is; a `fg:feature` reference when its group is listed, or when it
  is a feature of a listed view.
- `push`: feature groups it may write through /push and /write-to-online-store ("*" = all; empty = none).
- `pii`: whether it may receive features declared `pii: true` (a request for one without it is refused, never
  silently answered without them).
- `metrics`: /metrics and the served versions on /ready. `admin`: everything above, plus the web UI.

Keys from $FS_API_KEYS (plain text in the environment, the older way) are full-access (admin) keys.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import FeatureStoreError

KEY_FILE_ENV = "FS_API_KEYS_FILE"
PLAIN_KEYS_ENV = "FS_API_KEYS"
KEY_FILE_NAME = "api_keys.json"
ALL = "*"
FORMAT_VERSION = 1
SECRET_PREFIX = "fsk_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")


class Denied(FeatureStoreError):
    """A valid key asking for something outside its scope (HTTP 403)."""

    status = 403


class KeyFileError(FeatureStoreError):
    """The key file cannot be read or is not valid."""


# -- secrets and hashes -------------------------------------------------------------------------------------

def new_secret() -> str:
    """A fresh secret: 32 random bytes (256 bits), URL-safe text."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str | bytes) -> str:
    """SHA-256 of the secret. Why not a salted slow KDF (scrypt, PBKDF2): those protect low-entropy passwords from
    guessing; these secrets are 256 random bits made by `new_secret`, so no guessing of a leaked hash is feasible
    whatever the hash speed, and a salt adds nothing against precomputation of a space that large. A fast hash
    keeps checking a key on every request at about a microsecond (scrypt costs tens of ms per request, or an
    in-memory cache of the plain secrets, which is what hashing is meant to avoid)."""
    raw = secret.encode() if isinstance(secret, str) else secret
    return "sha256:" + hashlib.sha256(raw).hexdigest()


# -- scopes -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scope:
    """What one key may do. Built from a key file entry, or `Scope.full()` for a plain $FS_API_KEYS key."""

    name: str
    feature_views: frozenset[str] = frozenset()
    feature_groups: frozenset[str] = frozenset()
    push: frozenset[str] = frozenset()
    pii: bool = False
    metrics: bool = False
    admin: bool = False

    @classmethod
    def full(cls, name: str = "FS_API_KEYS") -> Scope:
        return cls(name, frozenset({ALL}), frozenset({ALL}), frozenset({ALL}), True, True, True)

    def reads_group(self, fg: str) -> bool:
        return self.admin or ALL in self.feature_groups or fg in self.feature_groups

    def lists_view(self, view: str) -> bool:
        return self.admin or ALL in self.feature_views or view in self.feature_views

    def reads_view(self, view: str, refs: Sequence[str] | None) -> bool:
        """Listed, or (its references known) every feature group it reads is in scope."""
        if self.lists_view(view):
            return True
        return bool(refs) and all(self.reads_group(r.split(":", 1)[0]) for r in refs)


def check_read(scope: Scope, *, view: str | None = None, view_refs: Sequence[str] | None = None,
               features: Sequence[str] | None = None,
               views: Callable[[], Mapping[str, Sequence[str]]] = dict,
               is_pii: Callable[[str, str], bool] = lambda fg, feat: False) -> None:
    """Raise Denied unless `scope` may read feature view `view` (its 'fg:feature' refs `view_refs`, None when no
    such view is published) and/or the references `features`. `views()` -> published view name -> its refs (only
    called when a reference is not covered by its group); `is_pii(fg, feature)` from the served specs."""
    if scope.admin:
        return
    served: list[str] = []
    if view is not None:
        if not scope.reads_view(view, view_refs):
            raise Denied(f"API key {scope.name!r} may not read feature view {view[:100]!r}",
                         fix=_scope_fix(scope, f"--feature-view {view[:100]}"))
        served += list(view_refs or ())
    if features is not None:
        outside = [r for r in features if not scope.reads_group(r.split(":", 1)[0])]
        if outside:
            by_view = {r for name, refs in views().items() if scope.lists_view(name) for r in refs}
            outside = [r for r in outside if r not in by_view]
        if outside:
            groups = ", ".join(dict.fromkeys(r.split(":", 1)[0][:100] for r in outside))
            raise Denied(f"API key {scope.name!r} may not read feature group(s) {groups} "
                         f"(requested {', '.join(r[:100] for r in outside[:5])})",
                         fix=_scope_fix(scope, f"--feature-group {groups.split(', ')[0]}"))
        served += list(features)
    if not scope.pii:
        pii = [r for r in dict.fromkeys(served) if r.count(":") == 1 and is_pii(*r.split(":"))]
        if pii:
            raise Denied(f"API key {scope.name!r} may not receive personal data: {', '.join(pii)} "
                         f"{'is' if len(pii) == 1 else 'are'} declared pii: true",
                         fix="request the other features only, or use a key created with --pii")


def check_push(scope: Scope, feature_group: str | None, asked: str) -> None:
    """Raise Denied unless `scope` may write feature group `feature_group` (None: `asked` names none known)."""
    if scope.admin or ALL in scope.push or (feature_group is not None and feature_group in scope.push):
        return
    what = feature_group or asked
    raise Denied(f"API key {scope.name!r} may not push to {str(what)[:100]!r}",
                 fix=f"use a key created with --feature-group {str(what)[:100]} --push")


def check_route(scope: Scope, kind: str) -> None:
    """`kind`: 'metrics' (/metrics), 'ui' (the web UI); anything else is open to every valid key."""
    if scope.admin:
        return
    if kind == "metrics" and not scope.metrics:
        raise Denied(f"API key {scope.name!r} may not read /metrics",
                     fix="use a key created with --metrics (or serve with --public-metrics)")
    if kind == "ui":
        raise Denied(f"API key {scope.name!r} may not use the web UI", fix="use a key created with --admin")


def visible(scope: Scope, views: Mapping[str, Sequence[str]], groups: Iterable[str]) -> tuple[set[str], set[str]]:
    """(views, feature groups) a listing shows this key: the ones it may read."""
    return ({v for v, refs in views.items() if scope.reads_view(v, refs)}, {g for g in groups if scope.reads_group(g)})


def _scope_fix(scope: Scope, option: str) -> str:
    parts = []
    if scope.feature_views:
        parts.append("views " + ", ".join(sorted(scope.feature_views)))
    if scope.feature_groups:
        parts.append("groups " + ", ".join(sorted(scope.feature_groups)))
    have = "; ".join(parts) or "nothing"
    return f"this key reads {have}; ask for a key created with {option} (fs keys create)"


# -- the key file -----------------------------------------------------------------------------------------

@dataclass
class KeyRecord:
    name: str
    hash: str
    feature_views: list[str] = field(default_factory=list)
    feature_groups: list[str] = field(default_factory=list)
    push: list[str] = field(default_factory=list)
    pii: bool = False
    metrics: bool = False
    admin: bool = False
    created_at: str = ""

    def scope(self) -> Scope:
        return Scope(self.name, frozenset(self.feature_views), frozenset(self.feature_groups), frozenset(self.push),
                     self.pii, self.metrics, self.admin)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "hash": self.hash, "feature_views": self.feature_views,
                "feature_groups": self.feature_groups, "push": self.push, "pii": self.pii, "metrics": self.metrics,
                "admin": self.admin, "created_at": self.created_at}

    def public(self) -> dict[str, Any]:
        """What `fs keys list` shows: everything but the hash."""
        d = self.to_dict()
        del d["hash"]
        return d


def default_key_file(state_dir: str | os.PathLike) -> Path:
    return Path(state_dir) / KEY_FILE_NAME


def key_file_path(state_dir: str | os.PathLike | None) -> Path | None:
    """$FS_API_KEYS_FILE, else the state folder's api_keys.json (None without either)."""
    env = os.environ.get(KEY_FILE_ENV)
    if env:
        return Path(env)
    return default_key_file(state_dir) if state_dir is not None else None


def load_keys(path: str | os.PathLike) -> list[KeyRecord]:
    """The records of a key file; KeyFileError (what is wrong, where) for anything unreadable or invalid."""
    path = Path(path)
    fix = f"fix or remove {path} (`fs keys create` writes a valid one)"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"API key file {path} does not exist",
                           fix=f"create a key with `fs keys create NAME`, or unset {KEY_FILE_ENV}") from None
    except OSError as e:
        raise KeyFileError(f"API key file {path} cannot be read: {e.strerror}", fix=fix) from None
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise KeyFileError(f"API key file {path} is not valid JSON: {e}", fix=fix) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise KeyFileError(f"API key file {path}: expected an object with a `keys` list", fix=fix)
    if doc.get("version", FORMAT_VERSION) != FORMAT_VERSION:
        raise KeyFileError(f"API key file {path}: unknown format version {doc.get('version')!r}", fix=fix)
    records: list[KeyRecord] = []
    for i, entry in enumerate(doc["keys"]):
        records.append(_record(entry, f"API key file {path}, key #{i + 1}", fix))
    names = [r.name for r in records]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise KeyFileError(f"API key file {path}: key name(s) {', '.join(dup)} appear twice", fix=fix)
    return records


def _record(entry: Any, where: str, fix: str) -> KeyRecord:
    if not isinstance(entry, dict):
        raise KeyFileError(f"{where} is not an object", fix=fix)
    name, digest = entry.get("name"), entry.get("hash")
    if not isinstance(name, str) or not _NAME.match(name):
        raise KeyFileError(f"{where}: `name` must be 1-64 letters, digits, '_', '.', '-'", fix=fix)
    if not isinstance(digest, str) or not _HASH.match(digest):
        raise KeyFileError(f"{where} ({name}): `hash` must be 'sha256:' and 64 hex digits (never the secret)",
                           fix=fix)
    lists = {}
    for k in ("feature_views", "feature_groups", "push"):
        v = entry.get(k, [])
        if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
            raise KeyFileError(f"{where} ({name}): `{k}` must be a list of names (or [\"*\"])", fix=fix)
        lists[k] = v
    flags = {}
    for k in ("pii", "metrics", "admin"):
        v = entry.get(k, False)
        if not isinstance(v, bool):
            raise KeyFileError(f"{where} ({name}): `{k}` must be true or false", fix=fix)
        flags[k] = v
    unknown = set(entry) - {"name", "hash", "created_at", *lists, *flags}
    if unknown:  # a typo like "feature_view" would silently grant nothing: say so instead
        raise KeyFileError(f"{where} ({name}): unknown field(s) {', '.join(sorted(unknown))}", fix=fix)
    return KeyRecord(name, digest, **lists, **flags, created_at=str(entry.get("created_at", "")))


def save_keys(path: str | os.PathLike, records: Sequence[KeyRecord]) -> None:
    """Write the key file atomically (a reader sees the old file or the new one) with mode 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"version": FORMAT_VERSION, "keys": [r.to_dict() for r in records]}, indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".api_keys.", dir=path.parent)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def create_key(path: str | os.PathLike, name: str, *, feature_views: Sequence[str] = (),
               feature_groups: Sequence[str] = (), push: bool = False, pii: bool = False, metrics: bool = False,
               admin: bool = False, now: datetime | None = None) -> tuple[KeyRecord, str]:
    """Add a key to the file (created if missing): (its record, the secret, shown once and stored nowhere).
    `push`: it may write the feature groups it reads (`feature_groups`)."""
    if not _NAME.match(name or ""):
        raise FeatureStoreError(f"key name {name!r} is not valid", fix="use 1-64 letters, digits, '_', '.', '-'")
    path = Path(path)
    records = load_keys(path) if path.exists() else []
    if any(r.name == name for r in records):
        raise FeatureStoreError(f"an API key named {name!r} exists already",
                                fix=f"pick another name, or `fs keys revoke {name}` first")
    if not (feature_views or feature_groups or metrics or admin):
        raise FeatureStoreError(f"key {name!r} would allow nothing",
                                fix="give --feature-view FV and/or --feature-group FG (or '*'), --metrics or --admin")
    if push and not (feature_groups or admin):
        raise FeatureStoreError("--push needs --feature-group: the feature groups the key may write",
                                fix="e.g. fs keys create NAME --feature-group fg_customer_profile --push")
    secret = new_secret()
    created = (now or datetime.now(UTC).replace(tzinfo=None)).isoformat(timespec="seconds") + "Z"
    rec = KeyRecord(name, hash_secret(secret), sorted(set(feature_views)), sorted(set(feature_groups)),
                    sorted(set(feature_groups)) if push else [], pii, metrics, admin, created)
    save_keys(path, [*records, rec])
    return rec, secret


def revoke_key(path: str | os.PathLike, name: str) -> KeyRecord:
    path = Path(path)
    records = load_keys(path) if path.exists() else []
    gone = [r for r in records if r.name == name]
    if not gone:
        known = ", ".join(r.name for r in records) or "(none)"
        raise FeatureStoreError(f"no API key named {name!r} in {path}", fix=f"known keys: {known} (`fs keys list`)")
    save_keys(path, [r for r in records if r.name != name])
    return gone[0]


# -- authentication ---------------------------------------------------------------------------------------

class KeyRing:
    """The keys a server accepts: plain full-access keys ($FS_API_KEYS) and the key file's hashed, scoped keys.

    The key file is read at construction (a bad file fails here, at startup) and re-read when it changes (its
    inode, size or mtime: `save_keys` replaces it, so every write gives a new inode), checked at most every
    `check_seconds`: a revoked key stops working within that time, without a restart. Once a key file was
    configured, a file that disappears or turns invalid refuses its keys (KeyFileError: the edge answers 503)
    rather than opening the service."""

    def __init__(self, plain: Iterable[str | bytes] = (), path: str | os.PathLike | None = None,
                 check_seconds: float = 0.5):
        self._plain = [hash_secret(k).encode() for k in plain if k]
        self.path = Path(path) if path is not None else None
        self.check_seconds = check_seconds
        self._entries: list[tuple[bytes, Scope]] = []
        self._stamp: tuple[int, int, int] | None = None
        self._error: KeyFileError | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        if self.path is not None:
            self._load(self._stat())
            if self._error is not None:
                raise self._error

    @property
    def enabled(self) -> bool:
        return bool(self._plain) or self.path is not None

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _load(self, stamp: tuple[int, int, int] | None) -> None:
        try:
            records = load_keys(self.path)
        except KeyFileError as e:
            self._entries, self._error = [], e
        else:
            self._entries = [(r.hash.encode(), r.scope()) for r in records]
            self._error = None
        self._stamp = stamp

    def refresh(self) -> None:
        """Re-read the file if it changed (cheap: one stat, rate-limited)."""
        if self.path is None:
            return
        now = time.monotonic()
        if now - self._checked < self.check_seconds:
            return
        with self._lock:
            self._checked = now
            stamp = self._stat()
            if stamp != self._stamp:
                self._load(stamp)

    def authenticate(self, given: bytes | None) -> Scope | None:
        """The scope of the presented secret; None for a missing or unknown one. Every stored hash is compared
        (hmac.compare_digest) whatever matches first, so timing says nothing about which key was close. Raises
        KeyFileError when the key file is broken and the secret is not a plain key."""
        if not given:
            return None
        self.refresh()
        digest = hash_secret(given).encode()
        ok = False
        for h in self._plain:
            ok |= hmac.compare_digest(digest, h)
        found = None
        for h, scope in self._entries:
            if hmac.compare_digest(digest, h):
                found = scope
        if ok:
            return Scope.full()
        if found is None and self._error is not None:
            raise self._error
        return found
