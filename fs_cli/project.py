"""A dbt project on disk, and dbt run in-process against it (a cold dbt process costs seconds)."""

from __future__ import annotations

import copy
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import FeatureStoreError

# Nothing leaves the machine: dbt's and Soda's telemetry are off before either is imported.
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("SODA_CORE_TELEMETRY_ENABLED", "false")
# Every time in the store is UTC. libpq reads PGTZ when it connects, so dbt-postgres' sessions run in UTC too
# (macros/publish/snapshot_clock.sql pins the snapshot clock for plain `dbt` runs that lack this variable).
os.environ.setdefault("PGTZ", "UTC")

STATE_DIR = ".fs"  # the store's files (DuckDB warehouse, online store, logs): outside target/, which `dbt clean` empties

# dbt commands that (re)write target/manifest.json, which the read-only fast path then reuses (not `clean`/`deps`).
_WRITES_MANIFEST = {"parse", "build", "run", "compile", "snapshot", "seed", "test", "ls", "list", "show"}
_DBT_LOCK = threading.Lock()  # dbt's in-process runner keeps global state: one invocation at a time.


def find_project_dir(start: str | os.PathLike | None = None) -> Path:
    """The directory holding dbt_project.yml: the argument, $FS_PROJECT_DIR, or the nearest parent of cwd."""
    candidates: list[Path] = []
    if start is not None:
        candidates.append(Path(start))
    elif os.environ.get("FS_PROJECT_DIR"):
        candidates.append(Path(os.environ["FS_PROJECT_DIR"]))
    else:
        cwd = Path.cwd()
        candidates.extend([cwd, *cwd.parents])
    for c in candidates:
        if (c / "dbt_project.yml").is_file():
            return c.resolve()
    where = candidates[0] if candidates else Path.cwd()
    raise FeatureStoreError(
        f"no dbt_project.yml found at {where}" + ("" if start is not None else " or above it"),
        fix="run fs inside the feature-store project, or pass --project-dir / set FS_PROJECT_DIR",
    )


@dataclass
class DbtResult:
    success: bool
    results: list[Any] = field(default_factory=list)  # dbt RunResult objects
    exception: BaseException | None = None
    invocation_id: str | None = None


def _release_duckdb() -> None:
    """Close the DuckDB instance dbt-duckdb keeps open between invocations: DuckDB allows one writer process per
    file, and holding it would lock out BI clients and other `fs` processes until this process exits."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another adapter
        return
    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        if env is not None:
            try:
                env.close()
            finally:
                DuckDBConnectionManager._ENV = None


def _mtime_ns(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


class Project:
    """Paths, target and an in-process dbt runner that reuses the parsed manifest."""

    def __init__(
        self,
        project_dir: str | os.PathLike | None = None,
        target: str | None = None,
        vars: dict[str, Any] | None = None,
    ):
        self.dir = find_project_dir(project_dir)
        self.vars = dict(vars or {})
        self.profiles_dir = Path(os.environ.get("FS_PROFILES_DIR", self.dir))
        self.target = target or os.environ.get("FS_TARGET") or self._profile_default_target()
        # dbt-duckdb resolves a relative path against the cwd; pin it to the project so `fs` works from anywhere.
        # Each Project keeps its own path and sets it for its dbt calls, so several projects can share a process.
        env_path = os.environ.get("FS_DUCKDB_PATH")
        self._duckdb_path = (Path(env_path) if env_path else self.dir / STATE_DIR / "feature_store.duckdb").absolute()
        self._manifest = None
        self._manifest_fp: str | None = None  # fingerprint of the project files the parsed manifest was parsed from
        self._manifest_files: str | None = None  # manifest_cache.files_digest of the files the manifest was read from
        self._target_config: dict[str, Any] | None = None
        self._shared_reads: list[Any] | None = None  # inside reading(): [the borrowed session, or None until first use]
        self._memo: dict[Any, Any] | None = None  # inside reading(): values computed once per block (the catalog)

    # -- paths -------------------------------------------------------------------------------------------
    @property
    def warehouse_path(self) -> Path:
        return self._duckdb_path

    @property
    def state_dir(self) -> Path:
        """Where the store keeps its files (.fs/ in the project; the DuckDB file's folder when it is moved)."""
        return self._duckdb_path.parent

    @property
    def target_dir(self) -> Path:
        return self.dir / "target"

    # -- the dbt target ----------------------------------------------------------------------------------
    def _profile_default_target(self) -> str:
        """The profile's own `target:` (rendered as dbt renders it), the target dbt itself runs on without
        --target; `duckdb` when the profile cannot be read here (target_config reports that clearly)."""
        from . import manifest_cache

        cached = manifest_cache.cached_profile_value(self, "default_target")
        if cached:
            return str(cached)
        try:
            import yaml
            from dbt.config.profile import read_profile
            from dbt.config.renderer import ProfileRenderer
            from dbt_common.context import set_invocation_context

            profile_name = (yaml.safe_load((self.dir / "dbt_project.yml").read_text()) or {}).get("profile")
            raw = read_profile(str(self.profiles_dir)).get(profile_name) or {}
            set_invocation_context(os.environ)
            default = str(ProfileRenderer(self.vars).render_value(raw.get("target") or "duckdb"))
            manifest_cache.store_profile_value(self, "default_target", default)
            return default
        except Exception:  # noqa: BLE001 - fall back to the embedded default
            return "duckdb"

    def target_config(self) -> dict[str, Any]:
        """The dbt output this project runs against, rendered by dbt's own profile renderer (env_var and all)."""
        from . import manifest_cache

        if self._target_config is None:
            cached = manifest_cache.cached_profile_value(self, f"target:{self.target}")
            if cached:
                self._target_config = dict(cached)
                return self._target_config
            import yaml
            from dbt.config.profile import Profile, read_profile
            from dbt.config.renderer import ProfileRenderer
            from dbt_common.context import set_invocation_context

            profile_name = (yaml.safe_load((self.dir / "dbt_project.yml").read_text()) or {}).get("profile")
            raw = read_profile(str(self.profiles_dir))
            if profile_name not in raw:
                raise FeatureStoreError(
                    f"profile {profile_name!r} is not in {self.profiles_dir / 'profiles.yml'}",
                    fix="add it, or point FS_PROFILES_DIR at the folder holding your profiles.yml",
                )
            with self._pinned_paths():
                set_invocation_context(os.environ)
                try:
                    _, data = Profile.render_profile(raw[profile_name], profile_name, self.target,
                                                     ProfileRenderer(self.vars))
                except Exception as e:
                    raise FeatureStoreError(
                        f"cannot read target {self.target!r} of profile {profile_name!r}: {e}",
                        fix="check profiles.yml and FS_TARGET",
                    ) from None
            if data.get("type") == "duckdb":
                data["path"] = str(self._duckdb_path)
            self._target_config = dict(data)
            manifest_cache.store_profile_value(self, f"target:{self.target}", self._target_config)
        return self._target_config

    @contextmanager
    def _pinned_paths(self) -> Iterator[None]:
        """The profile's path variables pinned to this project, absolute, while dbt (or fs) renders the profile:
        FS_DUCKDB_PATH (the DuckDB file) and FS_SPARK_DIR (Spark's tables, metastore, scratch: <project>/.fs/spark)."""
        from .warehouse.spark import SPARK_DIR_ENV, spark_dir

        pinned = {"FS_DUCKDB_PATH": str(self._duckdb_path), SPARK_DIR_ENV: str(spark_dir(self.dir))}
        previous = {k: os.environ.get(k) for k in pinned}
        os.environ.update(pinned)
        try:
            yield
        finally:
            for k, v in previous.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    @contextmanager
    def _as_plain_dbt(self) -> Iterator[None]:
        """The process as plain `dbt` run in the project directory sees it, while fs runs dbt in-process: the project
        as the working directory (the profile's relative paths, like the default DuckDB file .fs/feature_store.duckdb,
        resolve there) and FS_DUCKDB_PATH as the user set it (pinned to this project's file only where it would
        resolve elsewhere). dbt hashes the rendered connection values into its partial-parse state: rendering an
        absolute path where plain `dbt` renders a relative one made `fs` and `dbt` each re-parse after the other.
        FS_SPARK_DIR stays pinned (the Spark session fs created holds those paths; the hash does not include them)."""
        from .warehouse.spark import SPARK_DIR_ENV, spark_dir

        pinned = {SPARK_DIR_ENV: str(spark_dir(self.dir))}
        seen = os.environ.get("FS_DUCKDB_PATH") or f"{STATE_DIR}/feature_store.duckdb"
        if os.path.normpath(self.dir / seen) != os.path.normpath(self._duckdb_path):
            pinned["FS_DUCKDB_PATH"] = str(self._duckdb_path)
        previous = {k: os.environ.get(k) for k in pinned}
        cwd = os.getcwd()
        os.environ.update(pinned)
        os.chdir(self.dir)
        try:
            yield
        finally:
            os.chdir(cwd)
            for k, v in previous.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    @property
    def engine(self) -> str:
        return str(self.target_config().get("type"))

    def warehouse(self, read_only: bool = False):
        """A session on the target warehouse (context manager): see fs_cli/warehouse. Inside `reading()`, read-only
        sessions are one borrowed session."""
        from contextlib import nullcontext

        from .warehouse import open_warehouse

        shared = self._shared_reads
        if shared is not None:
            if read_only:
                if shared[0] is None:
                    shared[0] = open_warehouse(self, read_only=True)
                return nullcontext(shared[0])  # closed when reading() ends
            self._close_shared_reads()  # an embedded file takes one read-write or read-only connection at a time
        return open_warehouse(self, read_only=read_only)

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Every read-only warehouse session opened in this block is one session, opened on first use and closed at
        the end: a page or report that reads through many SDK calls opens the warehouse once (an open costs a
        connection, or an embedded file's catalog load) instead of once per call. Single-threaded use."""
        if self._shared_reads is not None:  # nested: the outer block owns the session
            yield
            return
        self._shared_reads, self._memo = [None], {}
        try:
            yield
        finally:
            self._close_shared_reads()
            self._shared_reads, self._memo = None, None

    @property
    def reading_shared(self) -> bool:
        """Inside `reading()`: read-only sessions are shared."""
        return self._shared_reads is not None

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """`compute()`, once per key inside `reading()` (the project cannot change under a read-only block)."""
        if self._memo is None:
            return compute()
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def _close_shared_reads(self) -> None:
        if self._shared_reads and self._shared_reads[0] is not None:
            self._shared_reads[0].close()
            self._shared_reads[0] = None

    # -- dbt ---------------------------------------------------------------------------------------------
    def _base_args(self) -> list[str]:
        """dbt's arguments as plain `dbt` in the project directory has them: `--target` only when this is not the
        target dbt picks by itself (dbt hashes the --target and --vars it was given into its partial-parse state, so
        `--target duckdb` where plain dbt passes none made each tool re-parse after the other); `--vars` when set."""
        args = ["--project-dir", str(self.dir), "--profiles-dir", str(self.profiles_dir)]
        if self.target != self._profile_default_target() or os.environ.get("DBT_TARGET"):
            args += ["--target", self.target]  # (with DBT_TARGET set, dbt would otherwise take that one)
        if self.vars:
            args += ["--vars", json.dumps(self.vars, default=str)]
        return args

    def manifest(self, refresh: bool = False):
        """The project's manifest: the one dbt last wrote while the project is unchanged (fs_cli/manifest_cache.py,
        no dbt start-up), else parsed by dbt (partial parsing keeps that to seconds)."""
        from . import manifest_cache

        if self._manifest is None and not refresh:
            files = manifest_cache.project_files(self)  # one walk for the cache check and the edit check
            self._manifest = manifest_cache.load(self, files)
            self._manifest_files = manifest_cache.files_digest(self, files)
        if self._manifest is None or refresh:
            res = self.dbt(["parse", "--quiet"], reuse_manifest=False)
            if not res.success:
                raise FeatureStoreError(
                    f"dbt could not parse the project at {self.dir}: {res.exception or 'see dbt output above'}",
                    fix="run `dbt parse` to see the full error, fix the model/YAML it names, then retry",
                )
        return self._manifest

    def forget_manifest_if_edited(self) -> None:
        """A long-lived Project (a notebook's FeatureStore, a server) reads the project again after any of its files
        changed: the next `manifest()` loads or parses the files as they are now, never the manifest of before."""
        from . import manifest_cache

        if self._manifest is not None and manifest_cache.files_digest(self) != self._manifest_files:
            self._manifest, self._manifest_fp, self._manifest_files = None, None, None

    def with_vars(self, extra: dict[str, Any]) -> Project:
        """This project and warehouse with more dbt vars for its dbt calls, reusing the parsed manifest: vars are
        read when dbt executes a node, and a fresh parse with new vars would cost a full re-parse."""
        other = copy.copy(self)
        other.vars = {**self.vars, **extra}
        other._manifest = self._parsed_manifest()
        other._manifest_fp, other._manifest_files = self._manifest_fp, self._manifest_files
        return other

    def _parsed_manifest(self):
        """dbt's own Manifest object (what dbtRunner reuses), parsing if only the cached view is loaded."""
        manifest = self.manifest()
        if getattr(manifest, "is_view", False):
            manifest = self.manifest(refresh=True)
        return manifest

    def dbt(
        self,
        args: Sequence[str],
        callbacks: list[Callable] | None = None,
        reuse_manifest: bool = True,
    ) -> DbtResult:
        """Invoke dbt in-process. `args` start with the command (build, snapshot, run, ...)."""
        from dbt.cli.main import dbtRunner

        from . import manifest_cache

        cmd, *rest = list(args)
        if reuse_manifest and cmd != "parse" and getattr(self._manifest, "is_view", False):
            self._parsed_manifest()
        given = self._manifest if (reuse_manifest and cmd != "parse") else None
        # The manifest dbt writes is `given` (parsed earlier, maybe with other vars) or its own parse of the files now.
        files = manifest_cache.project_files(self) if given is None else None
        fp = self._manifest_fp if given is not None else manifest_cache.fingerprint(self, files)
        digest = manifest_cache.files_digest(self, files) if cmd == "parse" else None
        written_before = _mtime_ns(self.target_dir / "manifest.json")
        full = [cmd, *self._base_args(), *rest]
        kind = self.target_config().get("type")
        if kind == "duckdb":
            self._duckdb_path.parent.mkdir(parents=True, exist_ok=True)
        elif kind == "spark":
            # dbt-spark's session cursor getOrCreate()s the session this process already has: create it first, from
            # the same server_side_parameters, with the paths pinned to this project (fs_cli/warehouse/spark.py).
            from .warehouse.spark import session

            session(self)
        with _DBT_LOCK, self._as_plain_dbt():
            try:
                runner = dbtRunner(
                    manifest=given,
                    callbacks=callbacks or [],
                )
                res = runner.invoke(full)
                from dbt_common.invocation import get_invocation_id

                invocation_id = get_invocation_id()
            finally:
                _release_duckdb()
        if cmd == "parse" and res.success:
            self._manifest, self._manifest_fp, self._manifest_files = res.result, fp, digest
        rewrote = _mtime_ns(self.target_dir / "manifest.json") != written_before
        if res.success and rewrote and fp is not None and cmd in _WRITES_MANIFEST and "--inline" not in rest:
            # target/manifest.json now belongs to the files as they were when it was parsed (with this project's vars;
            # a with_vars copy records its parent's parse, which is the manifest dbt wrote)
            manifest_cache.record(self, fp)
        results = list(getattr(res.result, "results", None) or []) if cmd != "parse" else []
        return DbtResult(success=bool(res.success), results=results, exception=res.exception,
                         invocation_id=invocation_id)
