"""The Spark settings of the project's `spark` target (profiles.yml), for the benchmarks' own sessions.

Both contenders of `pit_compare.py --target spark` (ours through dbt-spark, Feast's Spark offline store) run on a
local Spark started from exactly these parameters (master local[2], UTC, two shuffle partitions, Delta), with the
scratch, warehouse and metastore directories under a throw-away folder, and the same driver memory. Imports only
PyYAML and Jinja2, which both venvs have.
"""

from __future__ import annotations

import os
from pathlib import Path

import jinja2
import yaml

REPO = Path(__file__).resolve().parent.parent
DRIVER_MEMORY = "4g"


def spark_params(scratch: Path) -> dict[str, str]:
    """server_side_parameters of the `spark` output, rendered with FS_SPARK_DIR = `scratch`."""
    raw = yaml.safe_load((REPO / "profiles.yml").read_text())
    outputs = next(iter(raw.values()))["outputs"]
    env = {**os.environ, "FS_SPARK_DIR": str(scratch)}
    env.setdefault("FS_SPARK_IVY", str(Path.home() / ".cache" / "fs-cli" / "spark-ivy"))

    def env_var(name: str, default: str | None = None) -> str:
        if name in env:
            return env[name]
        if default is None:
            raise KeyError(name)
        return default

    jenv = jinja2.Environment()
    params = {k: jenv.from_string(str(v)).render(env_var=env_var)
              for k, v in outputs["spark"]["server_side_parameters"].items()}
    params["spark.driver.memory"] = DRIVER_MEMORY
    for sub in ("warehouse", "derby", "tmp"):
        (scratch / sub).mkdir(parents=True, exist_ok=True)
    return params
