"""Reading and exporting stored versions in canonical order."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import FeatureStoreError
from ..project import Project
from ..warehouse import Warehouse
from .content import order_by
from .store import SPLIT_COLUMN, TrainingDataset, get_td

if TYPE_CHECKING:  # pyarrow and transforms/ (numpy, DuckDB) are imported by the functions that use them
    import pyarrow as pa

# -- reading -----------------------------------------------------------------------------------------------------

def td_order(td: TrainingDataset) -> list[str]:
    """The canonical row order of a stored training dataset (see canonical_order), split last."""
    names = [c["name"] for c in td.columns]
    first = [c["name"] for c in td.columns if c["role"] == "timestamp"]
    first += [c["name"] for c in td.columns if c["role"] == "key"]
    rest = [n for n in names if n not in first and n != SPLIT_COLUMN]
    return [*first, *rest, SPLIT_COLUMN]


def td_order_by(wh: Warehouse, td: TrainingDataset) -> str:
    """ORDER BY items of a stored version's canonical order on `wh`."""
    return order_by(wh, td_order(td), {c["name"]: c.get("type") or "" for c in td.columns})


def decimals_as_double(table: pa.Table) -> pa.Table:
    """DECIMAL / numeric columns as float64: what pandas and models expect (not Python Decimal objects), and the
    same Arrow type whichever engine chose a decimal for the column."""
    import pyarrow as pa

    for i, f in enumerate(table.schema):
        if pa.types.is_decimal(f.type):
            # Through the decimal's text: pyarrow's direct cast can land one ulp off (84.96 -> 84.96000000000001),
            # while parsing the exact decimal text gives the double nearest to it, as every engine's cast does.
            exact = table.column(i).cast(pa.string()).cast(pa.float64())
            table = table.set_column(i, pa.field(f.name, pa.float64(), f.nullable), exact)
    return table


def read_rows(wh: Warehouse, td: TrainingDataset, split: str | None = None) -> pa.Table:
    """A version's rows (one split or all) in canonical order, decimals as doubles."""
    if split is not None and split not in td.row_counts:
        raise FeatureStoreError(f"training dataset {td.ref} has no split {split!r}",
                                fix=f"its splits: {', '.join(td.row_counts)} (split {td.split['spec']})")
    where, params = (f"where {wh.quote(SPLIT_COLUMN)} = ?", [split]) if split is not None else ("", [])
    # Stored in canonical order; ordering again keeps it so for any reader and engine.
    return decimals_as_double(wh.arrow(f"select * from {td.table} {where} order by {td_order_by(wh, td)}", params))


def read(project: Project, feature_view: str, version: int | None = None,
         split: str | None = None) -> tuple[TrainingDataset, pa.Table]:
    with project.warehouse(read_only=True) as wh:
        td = get_td(wh, feature_view, version)
        return td, read_rows(wh, td, split)


def export(project: Project, feature_view: str, version: int | None, out: str | Path,
           fmt: str | None = None, split: str | None = None) -> tuple[TrainingDataset, int]:
    path = Path(out)
    suffix = path.suffix.lower().lstrip(".")
    fmt = (fmt or suffix or "").lower()
    if fmt not in ("parquet", "csv"):
        raise FeatureStoreError(f"cannot tell the export format of {out}", fix="pass --format parquet or --format csv")
    if suffix in ("parquet", "csv") and suffix != fmt:
        raise FeatureStoreError(f"--out {out} ends in .{suffix} but --format is {fmt}", fix="make them agree")
    td, table = read(project, feature_view, version, split)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    else:
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, path)
    return td, table.num_rows
