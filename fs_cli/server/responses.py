"""JSON answers of the service, and the one place an unexpected error becomes a logged 500/503.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi.responses import Response

from ..errors import FeatureStoreError

logger = logging.getLogger("fs_cli.server")


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


def error_response(e: FeatureStoreError, status: int | None = None) -> Response:
    return json_response({"error": e.message, "fix": e.fix}, status or getattr(e, "status", 400))


def unexpected(e: Exception, request_id: str) -> Response:
    """Store outages answer 503 (retryable); anything else is a bug, but still answers JSON. Both are logged with
    the request id and the traceback (the answer names only the exception type)."""
    mod = type(e).__module__
    if mod.startswith(("redis", "sqlite3")) or isinstance(e, ConnectionError | TimeoutError | OSError):
        logger.error("online store unavailable (request id %s)", request_id, exc_info=e)
        return json_response({"error": f"online store unavailable: {type(e).__name__}", "fix": "retry later"}, 503)
    logger.error("internal error (request id %s)", request_id, exc_info=e)
    return json_response({"error": f"internal error: {type(e).__name__}", "fix": "report this with the request id"},
                          500)
