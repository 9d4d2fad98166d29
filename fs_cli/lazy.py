"""Modules imported on first use, for the ones that cost start-up time a command may never need.

pandas, pyarrow and numpy take ~1 s to import together; `fs materialize` that finds nothing new, or `fs run` that
finds nothing changed, never touches them, yet a module-level `import pandas` in code those commands import made
every such call pay it. `pd = lazy("pandas")` at module level keeps the code reading as usual (`pd.DataFrame`) and
imports pandas at the first attribute access. Why not `importlib.util.LazyLoader`: it replaces the module in
`sys.modules` for every importer in the process; this proxy only changes the module that asks for it.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class _LazyModule:
    __slots__ = ("_fs_name", "_fs_module")

    def __init__(self, name: str):
        self._fs_name = name
        self._fs_module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        module = self._fs_module
        if module is None:
            module = self._fs_module = importlib.import_module(self._fs_name)
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._fs_name!r}{' (imported)' if self._fs_module is not None else ''}>"


def lazy(name: str) -> Any:
    """A stand-in for `import name` that imports it at the first attribute access."""
    return _LazyModule(name)
