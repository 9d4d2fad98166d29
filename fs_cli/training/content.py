"""Engine-independent column types, the canonical row order and the content hash of a version."""

from __future__ import annotations

import decimal
import hashlib
import json
import re
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from ..declarations.model import FeatureView
from ..warehouse import Warehouse

if TYPE_CHECKING:  # pyarrow and transforms/ (numpy, DuckDB) are imported by the functions that use them
    import pyarrow as pa

HASH_FORMAT = "fs-td-hash/2"


# -- engine-independent types and content hash ---------------------------------------------------------------------

def logical_type(type_name: str) -> str:
    """An engine's column type name -> boolean | number | timestamp | date | text | other. Integers, floats and
    decimals are all `number`: engines pick different numeric types for the same data (a seed's 1.5 is DOUBLE on
    DuckDB and numeric on Postgres), and a training dataset's content does not depend on that choice."""
    from ..transforms.spec import INTEGER, NUMERIC, STRING, type_kind

    t = re.sub(r"\(.*\)$", "", (type_name or "").strip().lower()).strip()
    kind = type_kind(t)
    if kind in (NUMERIC, INTEGER):
        return "number"
    if kind == STRING:
        return "text"
    if t.startswith(("timestamp", "datetime")):
        return "timestamp"
    if t in ("bool", "boolean", "date"):
        return "boolean" if t.startswith("bool") else "date"
    return t


def _number_text(v: Any) -> str:
    """Integers exactly; other numbers at 12 significant digits, so the last-bit differences between engines'
    float arithmetic (summation order of an average) do not change a hash."""
    if isinstance(v, int):
        return str(v)
    f = float(v)
    if f != f or f in (float("inf"), float("-inf")):
        return repr(f)
    if f.is_integer() and abs(f) < 2**53:
        return str(int(f))
    return format(f, ".12g")


def _value_text(v: Any, kind: str) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if kind == "number" or isinstance(v, int | float | decimal.Decimal):
        return _number_text(v)
    if isinstance(v, datetime):
        if v.tzinfo is not None:
            v = v.astimezone(UTC).replace(tzinfo=None)
        return v.isoformat(sep=" ")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.hex()
    return str(v)


def _encode(v: Any, kind: str) -> str:
    # 'n' for NULL, 'v<length>:<text>' for a value: no two different rows encode alike
    if v is None:
        return "n"
    text = _value_text(v, kind)
    return f"v{len(text)}:{text}"


def hash_rows(table: pa.Table, types: list[tuple[str, str]]) -> str:
    """sha256 of a canonical text form of `table` (rows in the order given): the column names with their logical
    types, then one line per row. Computed in Python from the values, so the same rows hash the same on every
    engine (no engine's cast-to-text, timestamp or float formatting is involved)."""
    kinds = [logical_type(t) for _, t in types]
    h = hashlib.sha256(json.dumps([HASH_FORMAT, [[n, k] for (n, _), k in zip(types, kinds, strict=True)]]).encode())
    for batch in table.select([n for n, _ in types]).to_batches(max_chunksize=50_000):
        cols = [[_encode(v, k) for v in col.to_pylist()] for col, k in zip(batch.columns, kinds, strict=True)]
        h.update("".join("|".join(row) + "\n" for row in zip(*cols, strict=True)).encode())
    return h.hexdigest()


def order_by(wh: Warehouse, order: list[str], types: dict[str, str]) -> str:
    """ORDER BY items for `order`: NULLs last, text by code point (the same order on every engine)."""
    items = []
    for c in order:
        expr = wh.quote(c)
        if logical_type(types.get(c, "")) == "text":
            expr = wh.text_sort(expr)
        items.append(f"{expr} asc nulls last")
    return ", ".join(items)


def content_hash(wh: Warehouse, relation: str, order: list[str], types: list[tuple[str, str]]) -> str:
    """The content hash of a stored table: its rows in canonical `order`, hashed by hash_rows."""
    cols = ", ".join(wh.quote(n) for n, _ in types)
    table = wh.arrow(f"select {cols} from {relation} order by {order_by(wh, order, dict(types))}")
    return hash_rows(table, types)



def canonical_order(fv: FeatureView, columns: list[str]) -> list[str]:
    """Spine timestamp, entity keys, then every other column: a total order up to identical rows."""
    first = [fv.spine_timestamp, *fv.key_columns]
    return [*first, *(c for c in columns if c not in first)]
