"""schemathesis fuzzes the service from its own OpenAPI spec (positive and negative cases): never a 5xx."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, settings
from online_support import NOW, SPEC, make_rows

from fs_cli.online import FVSpec, materialize
from fs_cli.online.backends import open_store
from fs_cli.server import create_app

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import not_a_server_error  # noqa: E402

_DIR = __import__("tempfile").mkdtemp(prefix="fs-fuzz-")
_STORE = open_store(f"sqlite:///{_DIR}/online-{uuid.uuid4().hex[:6]}.sqlite")
materialize(_STORE, SPEC, make_rows(50, 2), NOW,
            views={"customer_v1": FVSpec("customer_v1", ("fg_test:n", "fg_test:amount"), ("customer_id",))})
APP = create_app(_STORE, log_dir=f"{_DIR}/logs", max_batch=20)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    case.call_and_validate(checks=[not_a_server_error])
