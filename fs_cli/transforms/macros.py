"""Render dbt macro files (macros/transforms, macros/drift, ...) from Python with plain Jinja, without starting dbt.

SQL that dbt users call as macros is defined once, in those files; Python renders the same files instead of
re-writing the SQL: the transformations a training dataset is fitted and transformed with (macros/transforms), and
the drift statistics (macros/drift; starting dbt for every drift check would cost seconds per feature group).

The shim of dbt's context is small, and is all those macro files may use besides plain Jinja:
- `adapter.dispatch('m')` picks `<engine>__m` if the files define it, else `default__m` (none of DuckDB, Postgres,
  Spark inherits another adapter's macros in dbt, so there is no middle step); `adapter.quote`; `adapter.type`;
- `return(value)`: as in dbt, ends the macro and makes `value` (a list, a dict, a string ...) its result;
- `feature_store.<macro>` (the project's own namespace); `exceptions.raise_compiler_error(msg)` raises
  FeatureStoreError; `fromjson`; `execute` is true (rendering is always "execution time").
Each macro is compiled on its own and sees every other macro as a global, as in dbt: so a macro may call another by
name or through `feature_store.` and gets its `return` value, not its text.

This module lives in transforms/ (the pure library every layer may import) because fitting and applying
transformations render through it; it imports nothing but jinja2 and fs_cli.errors.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import nodes

from ..errors import FeatureStoreError

# The macros shipped with this fs_cli (the repository's macros/): what the transformations are rendered from, so
# the SQL is always the release the per-row path (apply_row.py) is held bit for bit equal to.
FS_MACRO_DIR = Path(__file__).resolve().parent.parent.parent / "macros"


def ansi_quote(name: str) -> str:
    """Standard SQL identifier quoting (DuckDB, Postgres); callers with a warehouse pass its own `quote`."""
    return '"' + name.replace('"', '""') + '"'


def dispatch_order(engine: str) -> tuple[str, ...]:
    """The macro prefixes `adapter.dispatch` tries on `engine`, most specific first."""
    return (engine, "default")


class _Return(Exception):  # noqa: N818 - control flow, as dbt's MacroReturn
    def __init__(self, value: Any):
        self.value = value


def _return(value: Any) -> None:
    raise _Return(value)


class _MacroCall:
    """A macro as dbt calls it: its `return(...)` value if it calls return, else its rendered text."""

    def __init__(self, name: str, macros: dict[str, Any]):
        self.name, self._macros = name, macros

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._macros[self.name](*args, **kwargs)
        except _Return as r:
            return r.value


class _Namespace:
    """`feature_store.<macro>`: the project's macros by name."""

    def __init__(self, calls: dict[str, _MacroCall]):
        self._calls = calls

    def __getattr__(self, name: str) -> _MacroCall:
        try:
            return self._calls[name]
        except KeyError:
            raise AttributeError(name) from None


class _Adapter:
    """The slice of dbt's `adapter` object the shared macros use."""

    def __init__(self, engine: str, calls: dict[str, _MacroCall]):
        self.type = engine
        self._calls = calls

    def dispatch(self, name: str, macro_namespace: str | None = None) -> _MacroCall:
        for prefix in dispatch_order(self.type):
            call = self._calls.get(f"{prefix}__{name}")
            if call is not None:
                return call
        raise FeatureStoreError(f"no implementation of macro {name} for {self.type}",
                                fix=f"define {self.type}__{name} or default__{name} in the project's macros")

    def quote(self, name: str) -> str:
        return _QUOTE.get()(str(name))


class _Exceptions:
    @staticmethod
    def raise_compiler_error(message: str) -> None:
        raise FeatureStoreError(str(message))


# The identifier quoting of the warehouse a render is for (set per call: the compiled macros are cached per engine).
_QUOTE: ContextVar[Callable[[str], str]] = ContextVar("fs_macro_quote", default=ansi_quote)


def _files(macro_dir: Path, subdirs: tuple[str, ...]) -> tuple[tuple[Path, int], ...]:
    return tuple((p, p.stat().st_mtime_ns) for d in subdirs for p in sorted((macro_dir / d).glob("*.sql")))


@lru_cache(maxsize=32)
def _macros(files: tuple[tuple[Path, int], ...], engine: str) -> dict[str, _MacroCall]:
    # keyed on (path, mtime) of every file: an edited macro is picked up by the next render
    env = jinja2.Environment(extensions=["jinja2.ext.do"], undefined=jinja2.StrictUndefined)
    defined = [node for path, _ in files for node in env.parse(path.read_text(), filename=str(path)).body
               if isinstance(node, nodes.Macro)]
    compiled: dict[str, Any] = {}
    calls = {node.name: _MacroCall(node.name, compiled) for node in defined}
    # a template copies the globals when its module is made: set them first; each macro then sees all the others
    # (wrapped, as dbt's context does), looked up by name when it runs
    env.globals.update(calls)
    env.globals.update({"adapter": _Adapter(engine, calls), "return": _return, "feature_store": _Namespace(calls),
                        "exceptions": _Exceptions(), "fromjson": json.loads, "execute": True})
    for node in defined:
        template = nodes.Template([node], lineno=node.lineno).set_environment(env)
        compiled[node.name] = getattr(env.from_string(template).module, node.name)
    return calls


def render_macro(macro_dir: Path, engine: str, name: str, *args: Any, subdirs: tuple[str, ...] = ("drift",),
                 quote: Callable[[str], str] = ansi_quote, **kwargs: Any) -> Any:
    """What macro `name` (defined in `macro_dir`/<subdirs>/*.sql) gives on `engine` for the arguments: its SQL text
    (stripped), or the value it `return`s (a list, a bool ...)."""
    files = _files(Path(macro_dir), subdirs)
    call = _macros(files, engine).get(name) if files else None
    if call is None:
        where = ", ".join(str(Path(macro_dir) / d) for d in subdirs)
        raise FeatureStoreError(f"no macro {name} in {where}",
                                fix="the project needs fs's macros (copy macros/drift, macros/transforms and "
                                "macros/tests from the feature-store project, or add it as a dbt package and copy "
                                "them in)")
    token = _QUOTE.set(quote)
    try:
        out = call(*args, **kwargs)
    finally:
        _QUOTE.reset(token)
    return out.strip() if isinstance(out, str) else out


def render_for(project: Any, wh: Any, name: str, *args: Any, subdirs: tuple[str, ...] = ("drift",),
               **kwargs: Any) -> Any:
    """Render macro `name` of the project being run (`project.dir/macros`) for warehouse `wh`'s engine."""
    return render_macro(project_macro_dir(project), wh.engine, name, *args, subdirs=subdirs, quote=wh.quote,
                        **kwargs)


def project_macro_dir(project: Any) -> Path:
    return Path(project.dir) / "macros"
