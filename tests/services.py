"""Real services for the tests (Postgres, Redis, Spark): reachable, or a skip with the reason on a laptop and a
failure in CI (`.ci/run` exports FS_REQUIRE_SERVICES=1, so a missing service can never pass as a skip)."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PG = {"host": os.environ.get("FS_TEST_PG_HOST", "127.0.0.1"), "port": int(os.environ.get("FS_TEST_PG_PORT", "5432")),
      "user": os.environ.get("FS_TEST_PG_USER", "postgres")}
REQUIRED = os.environ.get("FS_REQUIRE_SERVICES", "") not in ("", "0", "false")


def missing(service: str, reason: str) -> None:
    """Skip (laptop) or fail (CI) a test whose service is missing."""
    msg = f"{service} is not available: {reason}"
    if REQUIRED:
        pytest.fail(msg + " (FS_REQUIRE_SERVICES is set: run .ci/services.sh to install and start it)",
                    pytrace=False)
    pytest.skip(msg + "; run `bash .ci/services.sh` (as root) to install and start it")


def pg_connect(dbname: str = "postgres"):
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        con = psycopg2.connect(connect_timeout=5, dbname=dbname, **PG)
    except psycopg2.OperationalError as e:
        missing("Postgres", f"{PG['host']}:{PG['port']}: {str(e).strip()}")
    con.autocommit = True
    return con


def _create_pg_database(name: str) -> str:
    con = pg_connect()
    try:
        with con.cursor() as cur:
            cur.execute(f'create database "{name}"')
    finally:
        con.close()
    return name


def new_pg_database(prefix: str = "fs_test") -> str:
    """Create a fresh database with a unique name; the caller drops it (drop_pg_database)."""
    return _create_pg_database(f"{prefix}_{uuid.uuid4().hex[:12]}")


def fresh_pg_database(name: str) -> str:
    """Create the database `name` empty (dropped first if a dead run of this process left it)."""
    drop_pg_database(name)
    return _create_pg_database(name)


def drop_pg_database(name: str) -> None:
    con = pg_connect()
    try:
        with con.cursor() as cur:
            cur.execute(f'drop database if exists "{name}" with (force)')
    finally:
        con.close()


@contextmanager
def pg_database(prefix: str = "fs_test") -> Iterator[str]:
    """A fresh database, dropped afterwards (every test run gets its own: no shared state between workers)."""
    name = new_pg_database(prefix)
    try:
        yield name
    finally:
        drop_pg_database(name)


_PG_DB_VAR = re.compile(r"env_var\('FS_PG_DATABASE', '([^']+)'\)")


def clone_project(engine: str, src, dst, prefix: str):
    """A copy of a built project; on Postgres with its own database made from the source's as a template."""
    shutil.copytree(src, dst)
    if engine == "postgres":
        prof = dst / "profiles.yml"
        old = _PG_DB_VAR.search(prof.read_text()).group(1)
        new = f"{prefix}{uuid.uuid4().hex[:10]}"
        con = pg_connect()
        with con.cursor() as cur:
            cur.execute(f'create database "{new}" template "{old}"')
        con.close()
        prof.write_text(prof.read_text().replace(f"'FS_PG_DATABASE', '{old}'", f"'FS_PG_DATABASE', '{new}'"))
    return dst


def drop_clone(engine: str, d) -> None:
    """Drop the database of a clone_project copy (nothing on DuckDB)."""
    if engine == "postgres":
        name = _PG_DB_VAR.search((d / "profiles.yml").read_text()).group(1)
        con = pg_connect()
        with con.cursor() as cur:
            cur.execute(f'drop database if exists "{name}" with (force)')
        con.close()
