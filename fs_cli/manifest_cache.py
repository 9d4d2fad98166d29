"""Read-only commands without dbt's start-up: the manifest dbt last wrote, reused while the project is unchanged.

Importing dbt and parsing a project costs seconds per command, while reading the catalog needs only the manifest.
After every dbt call of fs that wrote target/manifest.json, `fs` keeps a copy of it (target/fs_manifest.json) with a
fingerprint of everything the parse it came from read (the project's files with their sizes and modification times,
the profile, the target, the vars and the FS_/DBT_ environment). A later command whose fingerprint matches reads that
copy as plain JSON. The copy is fs's own: a plain `dbt` call (maybe with other vars or another target) rewrites
target/manifest.json but not the copy, so alternating `dbt` and `fs` keeps the fast path. Any change — an edited
YAML, a new model, another target or var — misses the cache and dbt parses as before. Writes (build, snapshot, compile) always run dbt on a
real parsed manifest; `ManifestView` never reaches dbt.

Why not dbt's own partial parsing: it still imports dbt and loads its adapter (~2-6 s); this is the same idea
without that start-up, for the commands that only read.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from .project import Project

FINGERPRINT_FILE = "fs_manifest_fingerprint.json"
MANIFEST_COPY = "fs_manifest.json"  # target/manifest.json as of the recorded fingerprint
_PATH_KEYS = ("model-paths", "macro-paths", "snapshot-paths", "seed-paths", "test-paths", "analysis-paths")
_DEFAULT_PATHS = {"model-paths": ["models"], "macro-paths": ["macros"], "snapshot-paths": ["snapshots"],
                  "seed-paths": ["seeds"], "test-paths": ["tests"], "analysis-paths": ["analyses"]}
_SKIP_DIRS = {"__pycache__", ".hypothesis", ".pytest_cache"}


def _walk(root: Path) -> list[tuple[str, int, int]]:
    out: list[tuple[str, int, int]] = []
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            entries = list(os.scandir(d))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                if e.name not in _SKIP_DIRS:
                    stack.append(Path(e.path))
            elif e.name.endswith((".sql", ".yml", ".yaml", ".csv", ".md", ".py")):
                st = e.stat()
                out.append((e.path, st.st_mtime_ns, st.st_size))
    return out


def fingerprint(project: Project, files: list[tuple[str, int, int]] | None = None) -> str:
    """A digest of everything dbt's parse of this project depends on (cheap: stat calls, no file reads but YAML).
    `files`: `project_files(project)` when the caller has it already."""
    env = _parse_env()
    files = project_files(project) if files is None else files
    payload = json.dumps({"files": files, "target": project.target, "vars": project.vars, "env": env},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def files_digest(project: Project, files: list[tuple[str, int, int]] | None = None) -> str:
    """A digest of the project's files alone (path, mtime, size): what a long-lived `Project` compares to notice an
    edit since it read its manifest. Vars are left out: they are read when dbt runs a node, not at parse time."""
    return hashlib.sha256(json.dumps(project_files(project) if files is None else files).encode()).hexdigest()


def project_files(project: Project) -> list[tuple[str, int, int]]:
    """(path, mtime, size) of every file dbt's parse reads, sorted: one walk of the project."""
    project_yml = project.dir / "dbt_project.yml"
    cfg = yaml.safe_load(project_yml.read_text()) or {}
    files: list[tuple[str, int, int]] = []
    for key in _PATH_KEYS:
        for rel in cfg.get(key) or _DEFAULT_PATHS[key]:
            files += _walk(project.dir / rel)
    for f in (project_yml, project.dir / "packages.yml", project.dir / "dependencies.yml",
              Path(project.profiles_dir) / "profiles.yml"):
        if f.exists():
            st = f.stat()
            files.append((str(f), st.st_mtime_ns, st.st_size))
    return sorted(files)


def record(project: Project, fp: str) -> None:
    """After dbt succeeded: the manifest it wrote belongs to fingerprint `fp` (of the files as they were when that
    manifest was parsed: a file edited since then mismatches later, and the next command parses again). The copy is
    written first and the fingerprint names its size and mtime, so a reader never pairs one with the other's rival."""
    target = project.target_dir
    try:
        tmp = target / f"{MANIFEST_COPY}.{os.getpid()}.tmp"
        shutil.copyfile(target / "manifest.json", tmp)
        os.replace(tmp, target / MANIFEST_COPY)
        st = (target / MANIFEST_COPY).stat()
    except OSError:  # a read-only project still works, just without the shortcut
        return
    _write(target / FINGERPRINT_FILE, {"fingerprint": fp, "target": project.target,
                                       "manifest": [st.st_size, st.st_mtime_ns]})


def _write(path: Path, data: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, default=str))
        os.replace(tmp, path)
    except OSError:  # a read-only project still works, just without the shortcut
        pass


# -- the rendered profile: dbt's renderer costs importing dbt; its answer only changes with profiles.yml, vars and
# -- the environment, so it is kept beside the manifest under a key made of those.
PROFILE_FILE = "fs_profile_cache.json"


#: Settings that cannot change what dbt parses (a different value must not cost a re-parse): `fs run --json` sets
#: DBT_LOG_LEVEL to keep dbt's lines out of stdout, and must still find the manifest of a plain `fs run`.
_NOT_PARSE_INPUTS = frozenset({"FS_LOCK_TIMEOUT", "FS_REQUIRE_SERVICES", "DBT_LOG_LEVEL", "DBT_LOG_FORMAT",
                               "DBT_QUIET", "DBT_USE_COLORS", "DBT_PRINTER_WIDTH", "DBT_SEND_ANONYMOUS_USAGE_STATS"})


def _parse_env() -> list[tuple[str, str]]:
    """The FS_/DBT_/PG environment a parse may depend on, sorted."""
    return sorted((k, v) for k, v in os.environ.items()
                  if k.startswith(("FS_", "DBT_", "PG")) and k not in _NOT_PARSE_INPUTS)


def _profile_key(project: Project) -> str:
    parts: list[Any] = []
    for f in (Path(project.profiles_dir) / "profiles.yml", project.dir / "dbt_project.yml"):
        st = f.stat() if f.exists() else None
        parts.append((str(f), st.st_mtime_ns if st else None, st.st_size if st else None))
    env = _parse_env()
    return hashlib.sha256(json.dumps([parts, env, project.vars], sort_keys=True, default=str).encode()).hexdigest()


_PROFILE_KEYS_KEPT = 8  # renderings kept side by side (e.g. the project's own and a training dataset's extra vars)


def _entries(project: Project, filename: str) -> dict[str, Any]:
    """The {key: value} entries of one of fs's small caches in target/ (empty when missing or unreadable)."""
    try:
        data = json.loads((project.target_dir / filename).read_text())
    except (OSError, ValueError):
        return {}
    entries = data.get("entries") if isinstance(data, dict) else None
    return entries if isinstance(entries, dict) else {}


def _store_entry(project: Project, filename: str, entries: dict[str, Any], key: str, value: Any, kept: int) -> None:
    """`entries` with `key` set to `value` as the most recent, the `kept` most recent written back."""
    entries.pop(key, None)
    entries[key] = value
    _write(project.target_dir / filename, {"entries": dict(list(entries.items())[-kept:])})


def _profile_entries(project: Project) -> dict[str, dict[str, Any]]:
    return _entries(project, PROFILE_FILE)


def cached_profile_value(project: Project, name: str) -> Any:
    return (_profile_entries(project).get(_profile_key(project)) or {}).get(name)


def store_profile_value(project: Project, name: str, value: Any) -> None:
    """Kept per key, several keys at once: a dbt call with extra vars (another key) must not evict the project's own
    rendering, which every later command reads without importing dbt."""
    key = _profile_key(project)
    entries = _profile_entries(project)
    values = entries.get(key) or {}
    values[name] = value
    _store_entry(project, PROFILE_FILE, entries, key, values, _PROFILE_KEYS_KEPT)


def load(project: Project, files: list[tuple[str, int, int]] | None = None) -> ManifestView | None:
    """The manifest dbt last wrote, if the project is unchanged since; else None (parse)."""
    if _entry(project, files) is None:
        return None
    path = project.target_dir / MANIFEST_COPY
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return ManifestView(data)


def _entry(project: Project, files: list[tuple[str, int, int]] | None = None) -> dict[str, Any] | None:
    path = project.target_dir / FINGERPRINT_FILE
    try:
        entry = json.loads(path.read_text())
        st = (project.target_dir / MANIFEST_COPY).stat()
    except (OSError, ValueError):
        return None
    if entry.get("manifest") != [st.st_size, st.st_mtime_ns]:
        return None  # the copy is not the one this fingerprint was recorded with
    if entry.get("target") != project.target or entry.get("fingerprint") != fingerprint(project, files):
        return None
    return entry


class _Node(dict):
    """A manifest.json node with attribute access, the shape fs_cli reads from dbt's node objects."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            return None

    def to_dict(self) -> dict[str, Any]:
        return dict(self)


def _deep(value: Any) -> Any:
    if isinstance(value, dict):
        return _Node({k: _deep(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_deep(v) for v in value]
    return value


class ManifestView:
    """`nodes` and `sources` of target/manifest.json, read-only."""

    is_view = True

    def __init__(self, data: dict[str, Any]):
        self.metadata = data.get("metadata") or {}
        self.nodes = {uid: _deep(n) for uid, n in (data.get("nodes") or {}).items()}
        self.sources = {uid: _deep(n) for uid, n in (data.get("sources") or {}).items()}


# -- compiled feature views: `dbt compile` of a feature view costs dbt's start-up and a parse (~8 s on the demo) for
# -- SQL that changes only with the project, its target and the declaration. It is compiled once with a sentinel
# -- read time and kept under a key of those; the real read time replaces the sentinel's literal afterwards.
COMPILED_FILE = "fs_compiled_views.json"
#: What the macro formats into `cast('...' as timestamp)` for var fs_as_of; never a real commit time.
AS_OF_SENTINEL = "1111-11-11 11:11:11.111111"
_COMPILED_KEPT = 32


def tool_versions() -> list[str]:
    """The versions of dbt and its adapters installed here (what builds and compiles the project)."""
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for dist in ("dbt-core", "dbt-duckdb", "dbt-postgres", "dbt-spark"):
        try:
            out.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            pass
    return out


def compiled_key(project: Project, name: str, extra_vars: dict[str, Any]) -> str:
    """Everything a compiled feature view depends on: the project's files, profile, target, vars and environment
    (`fingerprint`), the view, the extra vars of the compile (its resolved declaration) and dbt's versions."""
    payload = json.dumps([fingerprint(project), name, extra_vars, tool_versions()], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def cached_compiled(project: Project, key: str) -> str | None:
    sql = _entries(project, COMPILED_FILE).get(key)
    return sql if isinstance(sql, str) else None


def store_compiled(project: Project, key: str, sql: str) -> None:
    _store_entry(project, COMPILED_FILE, _entries(project, COMPILED_FILE), key, sql, _COMPILED_KEPT)
