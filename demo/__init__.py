"""The demo: code that shows the feature store working on this repository's seeds. It lives beside the library, not in
it: `pip install fs-cli` does not ship it and nothing in fs_cli imports it. Run it from the repository's root.

- `tour`:    `make demo` / `python -m demo`: every step is an `fs ...` command, printed before it runs
- `train`:   a data scientist's training script against the SDK (train, register, validate, promote, score)
- `request`: a model service's HTTP lookup against a running `fs serve`
- `monitor`: a normal and a shifted day of served traffic, caught by `fs monitor`
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository: the demo runs on this dbt project


def child_env() -> dict[str, str]:
    """The environment for the demo's child processes: the repository first on PYTHONPATH, so `python -m demo.<step>`
    (and this checkout's fs_cli) import in the child whatever its working directory."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env
