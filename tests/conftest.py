"""Shared fixtures: throw-away copies of the project, each with its own warehouse file."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from services import (
    clone_project,
    drop_clone,
    drop_pg_database,
    fresh_pg_database,
    new_pg_database,
    pg_connect,
)

os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("SODA_CORE_TELEMETRY_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# Tests never touch the user's warehouse or online store: every project copy uses its own target/.
for _var in ("FS_DUCKDB_PATH", "FS_PROJECT_DIR", "FS_TARGET", "FS_ONLINE_STORE", "FS_PROFILES_DIR",
             "FS_PG_DATABASE", "FS_PG_SCHEMA"):
    os.environ.pop(_var, None)

#: The warehouses every engine-parametrized test runs on (Spark joins in its own module: one session per run).
ENGINES = ["duckdb", "postgres"]

REPO = Path(__file__).resolve().parent.parent
PROJECT_FILES = ["dbt_project.yml", "profiles.yml"]
PROJECT_DIRS = ["models", "snapshots", "macros", "seeds"]


def use_engine(project: Path, engine: str, pg_database: str | None = None) -> Path:
    """Make `engine` the copy's default target (so `FeatureStore(dir)` and `fs` subprocesses use it); on Postgres
    the copy's target is the database given (each test project gets its own)."""
    prof = project / "profiles.yml"
    text = prof.read_text().replace("env_var('FS_TARGET', 'duckdb')", f"env_var('FS_TARGET', '{engine}')")
    if pg_database:
        text = text.replace("env_var('FS_PG_DATABASE', 'test')", f"env_var('FS_PG_DATABASE', '{pg_database}')")
    prof.write_text(text)
    return project


def copy_project(dst: Path, with_seeds: bool = True) -> Path:
    """A copy of the repo's dbt project in `dst` (no target/, no .fs/, no venv)."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in PROJECT_FILES:
        shutil.copy(REPO / f, dst / f)
    for d in PROJECT_DIRS:
        if (REPO / d).is_dir():
            ignore = shutil.ignore_patterns("*.py", "__pycache__") if d == "seeds" or not with_seeds else None
            if d == "seeds" and not with_seeds:
                (dst / d).mkdir(parents=True, exist_ok=True)
                continue
            shutil.copytree(REPO / d, dst / d, ignore=ignore, dirs_exist_ok=True)
    return dst


#: dbt's partial-parse state (target/partial_parse.msgpack) of projects as the test helpers make them, by
#: `_parse_key`: shared by the workers of a run (see `preparsed`).
_PARSE_CACHE: list[Path] = []
#: Projects given to `preparsed` whose state is not cached yet: (project, its key when it was made).
_UNCACHED: list[tuple[Path, str]] = []


@pytest.fixture(scope="session", autouse=True)
def _parse_cache(tmp_path_factory, worker_id) -> None:
    root = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    (root / "dbt_parse_cache").mkdir(exist_ok=True)
    _PARSE_CACHE[:] = [root / "dbt_parse_cache"]


@pytest.fixture(autouse=True)
def _cache_parse_states() -> Iterator[None]:
    """After each test, keep the partial-parse state of the projects `preparsed` could not serve yet."""
    yield
    for d, key in list(_UNCACHED):
        state = d / "target" / "partial_parse.msgpack"
        if not d.is_dir() or (state.is_file() and _cache_state(d, key, state)):
            _UNCACHED.remove((d, key))


def _parse_key(d: Path) -> str:
    """What dbt's partial-parse state check hashes that differs between test projects: dbt_project.yml and the
    profile (target, connection values). Anything else it checks (vars, env) makes dbt parse in full, as before."""
    h = hashlib.sha256()
    for f in ("dbt_project.yml", "profiles.yml"):
        h.update((d / f).read_bytes() + b"\0")
    return h.hexdigest()[:24]


def _cache_state(d: Path, key: str, state: Path) -> bool:
    if _parse_key(d) != key:  # the test changed its dbt_project.yml: that state is of another configuration
        return True
    cached = _PARSE_CACHE[0] / f"{key}.msgpack"
    if not cached.exists():
        with tempfile.NamedTemporaryFile(dir=_PARSE_CACHE[0], delete=False) as tmp:
            tmp.write(state.read_bytes())
        os.replace(tmp.name, cached)  # atomic: another worker may be writing the same key
    return True


def preparsed(d: Path) -> Path:
    """Give a fresh project copy the partial-parse state dbt left in an identically configured project (same
    dbt_project.yml and profile) of an earlier test, so its first dbt command re-parses only the files that differ
    (about a second) instead of the whole project and dbt's own macros (~10-20 s each time a test made a new
    project). dbt itself checks that state (dbt version, profile, vars, dbt_project.yml, every file's checksum) and
    parses the changed files, or everything when the state does not hold: the manifest is the one a full parse
    makes, as for every later command of a test. The first project of each configuration parses in full and leaves
    its state for the next (after its test). Postgres copies each have their own database, whose name is in the
    profile hash: `project_copy` names them so that it holds for the next test of the same process."""
    if not _PARSE_CACHE:
        return d
    key = _parse_key(d)
    cached = _PARSE_CACHE[0] / f"{key}.msgpack"
    if cached.exists():
        (d / "target").mkdir(exist_ok=True)
        shutil.copy(cached, d / "target" / "partial_parse.msgpack")
    else:
        _UNCACHED.append((d, key))
    return d


#: This process's prefix of the databases `project_copy` makes: unique per test run (other runs may share the server).
_PG_PROCESS = f"fs_test_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def project_copy(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Factory: a fresh project copy under tmp_path on DuckDB (its warehouse: <copy>/.fs/feature_store.duckdb),
    or on a fresh Postgres database with `engine="postgres"` (dropped after the test). The databases are named
    <this process>_<n> for the n-th copy of a test: each test's are new and empty, but their names (in the profile)
    are those of the previous test's, so dbt's partial-parse state carries over (`preparsed`)."""
    with ExitStack() as stack:
        slots = iter(range(1000))

        def make(name: str = "proj", with_seeds: bool = True, engine: str = "duckdb") -> Path:
            d = copy_project(tmp_path / name, with_seeds=with_seeds)
            db = None
            if engine == "postgres":
                db = fresh_pg_database(f"{_PG_PROCESS}_{next(slots)}")
                stack.callback(drop_pg_database, db)
            return use_engine(d, engine, db)

        yield make


@pytest.fixture(params=ENGINES)
def engine(request) -> str:
    """Parametrizes a test over every supported warehouse (Postgres: a real server; see tests/services.py)."""
    if request.param == "postgres":
        pg_connect().close()  # skip (laptop) or fail (CI) here when the server is missing
    return request.param


@contextmanager
def _shared_build(tmp_path_factory, worker_id: str, name: str) -> Iterator[tuple[Path, bool]]:
    """(directory, built already) of a build shared by every xdist worker of this run, held under a lock: the first
    worker to ask builds it there, the others wait and copy it (one demo build per run instead of one per worker).
    Without xdist (worker "master") the directory is this session's own."""
    root = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this worker dies
        try:
            yield root / name, (root / f"{name}.done").exists()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _mark_built(where: Path) -> None:
    (where.parent / f"{where.name}.done").write_text("built\n")


@pytest.fixture(scope="session")
def demo_project(tmp_path_factory, worker_id) -> Path:
    """The demo, built and published twice (day 1 with cutoff 2026-01-15, then day 2) once per test run; each worker
    gets its own copy. Training dataset fv_fraud_detection:1 was created between the two publishes."""
    # Training dataset v1 is made right after commit 1: test_training_datasets.py proves --as-of reproduces it.
    with _shared_build(tmp_path_factory, worker_id, "demo_duckdb") as (golden, built):
        if not built:
            build_demo(copy_project(golden / "proj"))  # warehouse: .fs/feature_store.duckdb
            _mark_built(golden)
        return shutil.copytree(golden / "proj", tmp_path_factory.mktemp("demo") / "proj")


def drop_demo_models(d: Path) -> Path:
    """Remove the demo's feature groups, snapshots, staging models and views from a project copy made without the
    demo seeds, so a test can add only its own."""
    for f in ["fg_customer_transactions", "fg_customer_profile", "fg_merchant_activity"]:
        (d / "models" / "feature_groups" / f"{f}.sql").unlink()
    (d / "models" / "feature_groups" / "_feature_groups.yml").unlink()
    (d / "snapshots" / "feature_groups.yml").unlink()
    for sub in ("staging", "feature_views"):
        for p in (d / "models" / sub).iterdir():
            p.unlink()
    return d


def build_demo(d: Path) -> Path:
    """The demo as `demo_project` builds it (day 1, training dataset v1, day 2) in the project copy `d`."""
    from fs_cli import FeatureStore

    r1 = FeatureStore(d, vars={"demo_data_cutoff": "2026-01-15 00:00:00"}).run(materialize=False)
    assert r1.ok, r1.to_dict()
    fs = FeatureStore(d)
    fs.create_training_dataset("fv_fraud_detection", split="random:0.8,0.2:7", description="right after commit 1")
    r2 = fs.run(materialize=False)
    assert r2.ok, r2.to_dict()
    return d


#: The file naming the Postgres database of the shared demo build, dropped when the run ends (pytest_sessionfinish).
GOLDEN_PG = "demo_postgres.database"


@pytest.fixture(scope="session")
def demo_project_postgres(tmp_path_factory, worker_id) -> Iterator[Path]:
    """`demo_project` on Postgres: the same two publishes and training dataset v1, built once per test run in its own
    database; each worker gets a copy in a database made from it as a template (dropped at the end of the session)."""
    pg_connect().close()  # skip (laptop) or fail (CI) when the server is missing
    with _shared_build(tmp_path_factory, worker_id, "demo_postgres") as (golden, built):
        if not built:
            db = new_pg_database()
            (golden.parent / GOLDEN_PG).write_text(db)
            build_demo(use_engine(copy_project(golden / "proj"), "postgres", db))
            _mark_built(golden)
        d = clone_project("postgres", golden / "proj", tmp_path_factory.mktemp("demo_pg") / "proj", "fs_test_demo_")
    try:
        yield d
    finally:
        drop_clone("postgres", d)


def pytest_sessionfinish(session) -> None:
    """The run's controller (or the only process) drops the shared Postgres demo database once every worker is done."""
    if hasattr(session.config, "workerinput"):
        return
    base = session.config._tmp_path_factory.getbasetemp() if hasattr(session.config, "_tmp_path_factory") else None
    marker = base / GOLDEN_PG if base is not None else None
    if marker is not None and marker.is_file():
        drop_pg_database(marker.read_text().strip())
        marker.unlink()


@pytest.fixture(scope="module")
def demo_copy_on_engine(demo_on_engine, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """(engine, project dir): a private copy of `demo_on_engine` for a module that writes to it (training datasets,
    materializations): the session's demo is shared by every module of the worker and must stay as described."""
    engine, src = demo_on_engine
    d = clone_project(engine, src, tmp_path_factory.mktemp(f"demo_copy_{engine}") / "proj", "fs_test_copy_")
    try:
        yield engine, d
    finally:
        drop_clone(engine, d)


@pytest.fixture(scope="module", params=ENGINES)
def demo_on_engine(request) -> tuple[str, Path]:
    """(engine, project dir) of the demo on every engine, once per module and engine (the DuckDB one is the
    session's `demo_project`)."""
    name = "demo_project" if request.param == "duckdb" else "demo_project_postgres"
    return request.param, request.getfixturevalue(name)


#: The modules that take longest (`make test` prints the slowest tests), started first: with `--dist loadfile
#: --no-loadscope-reorder` (Makefile) workers take modules in collection order, and a long module collected last would
#: run alone at the end. The two Spark modules are one work unit (`pytest_xdist_make_scheduler`).
#: test_training_datasets.py comes right after Spark: it builds the shared demos (`demo_project`,
#: `demo_project_postgres`) while the other worker runs modules that need none, so no worker waits on the build's lock.
SLOW_FIRST = ["test_spark.py", "test_spark_demo.py", "test_training_datasets.py", "test_incremental_groups.py",
              "test_publish_store.py", "test_unchanged_candidates.py", "test_publish_integrity.py", "test_push.py",
              "test_withhold_unvalidated.py", "test_pipeline_commits.py", "test_ci_workflow.py", "test_monitoring.py",
              "test_spine_as_of.py", "test_ui.py"]


@pytest.hookimpl(trylast=True)  # after pytest's own reordering by fixture parameters (kept within each module)
def pytest_collection_modifyitems(items) -> None:
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FIRST)))


#: The modules that run on Spark. Under `--dist loadfile` they are one work unit: one worker runs them in turn in one
#: JVM (the second module's session starts in the JVM the first one warmed up: Delta's jars are loaded and the JIT has
#: compiled Spark's planner and Delta's log replay, which made the same statements ~2x slower in a fresh JVM), instead
#: of two JVMs of ~1.3 GB started side by side on the two workers, each paying that warm-up while competing for the
#: same two cores.
SPARK_MODULES = ("test_spark.py", "test_spark_demo.py")
SPARK_UNIT = "tests/test_spark*.py (one JVM)"


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """xdist's loadfile scheduling with the Spark modules as one unit, and a worker's next module sent when one test is
    left in its queue, not two: the worker holds its last test until it gets more work (pytest's teardown needs the
    next item), so one is the least that keeps it running, and with two the next module waited behind the
    second-to-last test, e.g. behind the Spark demo's ~7-minute fixture while the other worker could have run it.
    Other dist modes: xdist's own."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SparkModulesTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return SPARK_UNIT if Path(scope).name in SPARK_MODULES else scope

        def _reschedule(self, node) -> None:
            if self.workqueue and not node.shutting_down and self._pending_of(self.assigned_work[node]) > 1:
                return
            super()._reschedule(node)

    return SparkModulesTogether(config, log)
