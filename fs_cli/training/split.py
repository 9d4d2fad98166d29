"""How a training dataset is split into train/validation/test: parsed once, rendered as SQL."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import FeatureStoreError
from ..timeutil import parse_timestamp

# -- split -------------------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"^\d+(\.\d+)?$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DEFAULT_NAMES = {1: ("train",), 2: ("train", "test"), 3: ("train", "validation", "test")}
SPLIT_HELP = ("random:0.8,0.2:SEED (train/test; three fractions add validation; or train=0.7,validation=0.1,"
              "test=0.2), time:CUTOFF (train before, test from CUTOFF; time:C1,C2 adds validation), or none")


@dataclass(frozen=True)
class SplitSpec:
    """How rows are assigned to splits. `none` puts every row in `train`."""

    kind: str  # none | random | time
    names: tuple[str, ...] = ("train",)
    fractions: tuple[float, ...] = ()
    seed: int = 0
    cutoffs: tuple[datetime, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> SplitSpec:
        if text is None or str(text).strip().lower() in ("", "none"):
            return cls("none")
        raw = str(text).strip()
        kind, _, rest = raw.partition(":")
        kind = kind.strip().lower()

        def fail(problem: str) -> FeatureStoreError:
            return FeatureStoreError(f"--split {raw!r}: {problem}", fix=f"use {SPLIT_HELP}")

        if kind == "random":
            parts = rest.split(":")
            if len(parts) > 2 or not parts[0].strip():
                raise fail("expected random:FRACTIONS[:SEED]")
            seed = 0
            if len(parts) == 2:
                if not parts[1].strip().isdigit():
                    raise fail(f"seed {parts[1]!r} is not a whole number")
                seed = int(parts[1])
            names, fractions = [], []
            for item in parts[0].split(","):
                name, eq, value = item.strip().rpartition("=")
                if not eq:
                    name, value = "", item.strip()
                if not _NUMBER.match(value.strip()) or not 0 < float(value) <= 1:
                    raise fail(f"fraction {value.strip()!r} is not a number in (0, 1]")
                if eq and not _NAME.match(name.strip()):
                    raise fail(f"split name {name!r} is not a plain name")
                names.append(name.strip())
                fractions.append(float(value))
            if any(names) and not all(names):
                raise fail("name every fraction or none")
            if not any(names):
                if len(fractions) not in _DEFAULT_NAMES:
                    raise fail("give 1-3 fractions (train,test or train,validation,test) or name them")
                names = list(_DEFAULT_NAMES[len(fractions)])
            if len(set(names)) != len(names):
                raise fail("split names repeat")
            if abs(sum(fractions) - 1.0) > 1e-6:
                raise fail(f"fractions add up to {sum(fractions):g}, not 1")
            return cls("random", tuple(names), tuple(fractions), seed)
        if kind == "time":
            cutoffs = []
            for item in rest.split(","):
                if not item.strip():
                    raise fail("expected time:CUTOFF[,CUTOFF2]")
                cutoffs.append(parse_timestamp(item.strip(), where=f"--split {raw!r}"))
            if len(cutoffs) > 2 or cutoffs != sorted(cutoffs) or len(set(cutoffs)) != len(cutoffs):
                raise fail("give one cutoff (train/test) or two increasing cutoffs (train/validation/test)")
            return cls("time", _DEFAULT_NAMES[len(cutoffs) + 1], (), 0, tuple(cutoffs))
        raise fail(f"unknown split kind {kind!r}")

    def __str__(self) -> str:
        if self.kind == "random":
            return "random:" + ",".join(f"{n}={f:g}" for n, f in zip(self.names, self.fractions, strict=True)) \
                + f":{self.seed}"
        if self.kind == "time":
            return "time:" + ",".join(c.isoformat(sep=" ") for c in self.cutoffs)
        return "none"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "spec": str(self), "names": list(self.names), "fractions": list(self.fractions),
                "seed": self.seed if self.kind == "random" else None,
                "cutoffs": [c.isoformat(sep=" ") for c in self.cutoffs]}

    def draw_sql(self, row_number: str, text: str = "varchar") -> tuple[str, list[Any]]:
        """SQL for the first 8 hex digits of md5('<seed>:<row number>') of the row numbered `row_number` (1-based,
        canonical order); `text` is the engine's text type. uniform_sql turns them into the draw."""
        if self.kind != "random":
            return f"cast(null as {text})", []
        return f"substr(md5(cast(? as {text}) || ':' || cast({row_number} as {text})), 1, 8)", [str(self.seed)]

    @staticmethod
    def uniform_sql(hex8: str, double: str = "double") -> str:
        """The random split's uniform draw in [0, 1) from 8 hex digits: their value / 2^32. Written with position()
        and arithmetic only, so every engine computes the same draw (no hex-cast syntax), stable across versions
        (unlike hash()) and reproducible in Python: split_fraction(seed, n)."""
        digits = " + ".join(
            f"cast(position(substr({hex8}, {i + 1}, 1) in '0123456789abcdef') - 1 as bigint) * {16 ** (7 - i)}"
            for i in range(8))
        return f"(cast(({digits}) as {double}) / cast(4294967296 as {double}))"

    def label_sql(self, ts: str, draw: str, text: str = "varchar") -> tuple[str, list[Any]]:
        """The split label as SQL (and its parameters), from the spine timestamp `ts` and the draw column."""
        if self.kind == "random":
            whens, params, acc = [], [], 0.0
            for name, frac in zip(self.names[:-1], self.fractions[:-1], strict=True):
                acc += frac
                whens.append(f"when {draw} < {acc!r} then ?")
                params.append(name)
            params.append(self.names[-1])
            return f"(case {' '.join(whens)} else ? end)", params
        if self.kind == "time":
            # Rows without a timestamp cannot be placed in time: they go to the last (held-out) split.
            whens, params = [], []
            for name, cutoff in zip(self.names[:-1], self.cutoffs, strict=True):
                whens.append(f"when {ts} < ? then ?")
                params += [cutoff, name]
            params.append(self.names[-1])
            return f"(case {' '.join(whens)} else ? end)", params
        return f"cast(? as {text})", ["train"]


def split_fraction(seed: int, row_number: int) -> float:
    """The random split's uniform draw for a row, in Python (the oracle of SplitSpec.sql)."""
    return int(hashlib.md5(f"{seed}:{row_number}".encode()).hexdigest()[:8], 16) / 2**32


