"""Render the project's dbt macros (macros/drift, ...) from Python, without starting dbt.

The SQL of every statistic is defined once, as dbt macros in the project being run (`<project>/macros`, so a
project's own version of a macro wins, and nothing depends on where fs_cli is installed). dbt users call them in
models and tests; here the same files are rendered with plain Jinja and a three-function shim of dbt's context
(`adapter.dispatch`, `adapter.quote`, `return`), which is all those macro files may use. Starting dbt for every
drift check would cost seconds per feature group.

Dispatch is explicit and follows dbt's rule for the engines fs supports: `adapter.dispatch('m')` picks
`<engine>__m` if the files define it, else `default__m` (none of DuckDB, Postgres, Spark inherits another adapter's
macros in dbt, so there is no middle step).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from ..errors import FeatureStoreError
from ..warehouse import quote_ident


def dispatch_order(engine: str) -> tuple[str, ...]:
    """The macro prefixes `adapter.dispatch` tries on `engine`, most specific first."""
    return (engine, "default")


class _Adapter:
    """The slice of dbt's `adapter` object the shared macros use."""

    def __init__(self, engine: str, module_ref: list[Any]):
        self.type = engine
        self._module_ref = module_ref

    def dispatch(self, name: str, macro_namespace: str | None = None):
        module = self._module_ref[0]
        for prefix in dispatch_order(self.type):
            macro = getattr(module, f"{prefix}__{name}", None)
            if macro is not None:
                return macro
        raise FeatureStoreError(f"no implementation of macro {name} for {self.type}",
                                fix=f"define {self.type}__{name} or default__{name} in the project's macros")

    def quote(self, name: str) -> str:
        return _QUOTE.get()(str(name))


# The identifier quoting of the warehouse a render is for (set per call: the compiled macros are cached per engine).
_QUOTE: ContextVar[Callable[[str], str]] = ContextVar("fs_macro_quote", default=quote_ident)


def _files(macro_dir: Path, subdirs: tuple[str, ...]) -> tuple[tuple[Path, int], ...]:
    return tuple((p, p.stat().st_mtime_ns) for d in subdirs for p in sorted((macro_dir / d).glob("*.sql")))


@lru_cache(maxsize=32)
def _module(files: tuple[tuple[Path, int], ...], engine: str):
    # keyed on (path, mtime) of every file: an edited macro is picked up by the next render
    source = "\n".join(p.read_text() for p, _ in files)
    env = jinja2.Environment(extensions=["jinja2.ext.do"], undefined=jinja2.StrictUndefined)
    ref: list[Any] = [None]
    env.globals.update({"adapter": _Adapter(engine, ref), "return": lambda value: value})
    ref[0] = env.from_string(source).module
    return ref[0]


def render_macro(macro_dir: Path, engine: str, name: str, *args: Any, subdirs: tuple[str, ...] = ("drift",),
                 quote: Callable[[str], str] = quote_ident, **kwargs: Any) -> str:
    """The SQL that macro `name` (defined in `macro_dir`/<subdirs>/*.sql) produces on `engine` for the arguments."""
    files = _files(Path(macro_dir), subdirs)
    macro = getattr(_module(files, engine), name, None) if files else None
    if macro is None:
        where = ", ".join(str(Path(macro_dir) / d) for d in subdirs)
        raise FeatureStoreError(f"no macro {name} in {where}",
                                fix="the project needs fs's macros (copy macros/drift and macros/tests from the "
                                "feature-store project, or add it as a dbt package and copy them in)")
    token = _QUOTE.set(quote)
    try:
        return str(macro(*args, **kwargs)).strip()
    finally:
        _QUOTE.reset(token)


def render_for(project: Any, wh: Any, name: str, *args: Any, subdirs: tuple[str, ...] = ("drift",),
               **kwargs: Any) -> str:
    """Render macro `name` of the project being run (`project.dir/macros`) for warehouse `wh`'s engine."""
    return render_macro(project_macro_dir(project), wh.engine, name, *args, subdirs=subdirs, quote=wh.quote,
                        **kwargs)


def project_macro_dir(project: Any) -> Path:
    return Path(project.dir) / "macros"
