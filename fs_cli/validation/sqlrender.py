"""Render the project's dbt macros (macros/drift, ...) from Python, without starting dbt.

The SQL of every statistic is defined once, as dbt macros. dbt users call them in models and tests; here the same
files are rendered with plain Jinja and a three-function shim of dbt's context (`adapter.dispatch`,
`adapter.quote`, `return`), which is all those macro files are allowed to use. Starting dbt for every drift check
would cost seconds per feature group.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2

MACRO_ROOT = Path(__file__).resolve().parent.parent.parent / "macros"
DIALECTS = ("duckdb", "postgres")


class _Adapter:
    """The slice of dbt's `adapter` object the shared macros use."""

    def __init__(self, dialect: str, module_ref: list[Any]):
        self.type = dialect
        self._module_ref = module_ref

    def dispatch(self, name: str, macro_namespace: str | None = None):
        module = self._module_ref[0]
        for prefix in (self.type, "default"):
            macro = getattr(module, f"{prefix}__{name}", None)
            if macro is not None:
                return macro
        raise KeyError(f"no implementation of macro {name} for {self.type}")

    def quote(self, name: str) -> str:
        return '"' + str(name).replace('"', '""') + '"'


@cache
def _module(dialect: str, subdirs: tuple[str, ...]):
    if dialect not in DIALECTS:
        raise ValueError(f"cannot render macros for {dialect!r}: supported are {DIALECTS}")
    source = "\n".join(
        p.read_text() for d in subdirs for p in sorted((MACRO_ROOT / d).glob("*.sql"))
    )
    env = jinja2.Environment(extensions=["jinja2.ext.do"], undefined=jinja2.StrictUndefined)
    ref: list[Any] = [None]
    env.globals.update({"adapter": _Adapter(dialect, ref), "return": lambda value: value})
    ref[0] = env.from_string(source).module
    return ref[0]


def render_macro(dialect: str, name: str, *args: Any, subdirs: tuple[str, ...] = ("drift",), **kwargs: Any) -> str:
    """The SQL that macro `name` produces for `dialect` with the given arguments."""
    macro = getattr(_module(dialect, subdirs), name, None)
    if macro is None:
        raise KeyError(f"no macro {name} in macros/{', macros/'.join(subdirs)}")
    return str(macro(*args, **kwargs)).strip()
