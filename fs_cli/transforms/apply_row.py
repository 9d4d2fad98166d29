"""Python application of fitted transformations: the online path (one feature vector per request).

Every step mirrors its SQL (macros/transforms/apply.sql) operation for operation (same IEEE double arithmetic, same
order), so the two paths agree bit for bit on + - / and to libm precision on ln. Per-chain closures are built once
per statistics (`Transformer`); a request then costs a few dict lookups and float operations per feature.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Mapping
from decimal import Decimal
from threading import Lock
from typing import Any

from ..errors import FeatureStoreError
from .spec import INTEGER, STRING, step_output_kind
from .sql import RAW, consumes_text

Scalar = Callable[[Any], Any]


def _to_double(state: str, feature: str) -> Scalar | None:
    if state == RAW:
        def raw(v: Any) -> float | None:
            if v is None:
                return None
            if type(v) is float or isinstance(v, float):
                return None if v != v else v  # NaN is missing, as nullif(..., 'NaN') in SQL
            if isinstance(v, int | Decimal):
                f = float(v)
                return None if f != f else f
            raise FeatureStoreError(f"feature {feature} is {v!r} ({type(v).__name__}), not a number",
                                    fix=f"send {feature} as a JSON number or null")
        return raw
    if state == INTEGER:
        return lambda v: None if v is None else float(v)
    return None  # already a double


def _to_text(state: str, feature: str) -> Scalar | None:
    if state == STRING:
        return None  # already text

    def text(v: Any) -> str | None:  # what cast(v as varchar) gives for text and integers
        if v is None or isinstance(v, str):
            return v
        if isinstance(v, bool):
            raise FeatureStoreError(f"feature {feature} is a boolean, not a category", fix="send a string")
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v)
    return text


def _step(fn: str, p: Mapping[str, Any]) -> Scalar:
    if fn in _SCALERS:
        center, scale = _center(fn, p), p["scale"]
        return lambda x: None if x is None else (x - center) / scale
    if fn == "log1p":
        return lambda x: math.log(1 + x) if x is not None and x > -1 else None
    if fn == "clip":
        lo, hi = p.get("min"), p.get("max")

        def clip(x: float | None) -> float | None:
            if x is None:
                return None
            if lo is not None and x < lo:
                return lo
            if hi is not None and x > hi:
                return hi
            return x
        return clip
    if fn == "impute":
        fill = p["fill"]
        return lambda x: fill if x is None else x
    if fn == "bucketize":
        bounds = list(p["boundaries"])
        return lambda x: None if x is None else bisect_right(bounds, x)
    if fn == "label_encode":
        codes = {c: i for i, c in enumerate(p["categories"])}
        unseen = p["unseen_code"]
        return lambda x: None if x is None else codes.get(x, unseen)
    raise FeatureStoreError(f"unknown transformation function {fn!r} in fitted statistics",
                            fix="refit the training dataset with this version of fs_cli")


_SCALERS = ("standard_scaler", "min_max_scaler", "robust_scaler")


def _center(fn: str, p: Mapping[str, Any]) -> float:
    return p["mean"] if fn == "standard_scaler" else p["min"] if fn == "min_max_scaler" else p["median"]


def _fused_scaler(fn: str, p: Mapping[str, Any], conv: Scalar) -> Scalar:
    """Raw input -> double -> (x - center) / scale in one closure; same operations as the two-step form."""
    center, scale = _center(fn, p), p["scale"]

    def f(v: Any) -> float | None:
        if type(v) is float:
            return None if v != v else (v - center) / scale
        x = conv(v)
        return None if x is None else (x - center) / scale
    return f


def _compose(funcs: list[Scalar]) -> Scalar:
    """f3(f2(f1(v))) without a per-call loop (this runs per feature per request)."""
    if not funcs:
        return lambda v: v
    if len(funcs) == 1:
        return funcs[0]
    if len(funcs) == 2:
        f1, f2 = funcs
        return lambda v: f2(f1(v))
    if len(funcs) == 3:
        f1, f2, f3 = funcs
        return lambda v: f3(f2(f1(v)))
    head, tail = _compose(funcs[:3]), _compose(funcs[3:])
    return lambda v: tail(head(v))


def compile_chain(chain: Mapping[str, Any]) -> Callable[[Any, dict[str, Any]], None]:
    """A function (input value, output dict) -> None that writes the chain's output column(s)."""
    funcs: list[Scalar] = []
    state, kind, feature = RAW, chain["input_kind"], chain["feature"]
    onehot: Mapping[str, Any] | None = None
    for step in chain["steps"]:
        fn = step["fn"]
        conv = (_to_text if consumes_text(fn, state, chain["input_kind"]) else _to_double)(state, feature)
        if fn in _SCALERS and state == RAW and conv is not None:
            funcs.append(_fused_scaler(fn, step["params"], conv))  # the common case, one call instead of two
        else:
            if conv is not None:
                funcs.append(conv)
            if fn == "one_hot":
                onehot = step["params"]
                break
            funcs.append(_step(fn, step["params"]))
        kind = step_output_kind(fn, kind)
        state = kind

    scalar = _compose(funcs)

    if onehot is None:
        output = chain["output"]

        def write(v: Any, out: dict[str, Any]) -> None:
            out[output] = scalar(v)
        return write

    index = dict(zip(onehot["categories"], onehot["columns"], strict=True))
    zeros = dict.fromkeys([*onehot["columns"], onehot["unseen_column"]], 0)
    unseen = onehot["unseen_column"]

    def write_onehot(v: Any, out: dict[str, Any]) -> None:
        x = scalar(v)
        out.update(zeros)
        if x is not None:
            out[index.get(x, unseen)] = 1
    return write_onehot


class Transformer:
    """Fitted transformations compiled to closures; `apply_row` is on the online request path."""

    def __init__(self, stats: Mapping[str, Any]):
        self.stats = stats
        self._chains = [(c["output"], c["feature"], compile_chain(c)) for c in stats["chains"]]
        self._by_output = {o: (f, w) for o, f, w in self._chains}
        self._features = {f for _, f, _ in self._chains}
        self.outputs = self.outputs_of(stats)

    @staticmethod
    def outputs_of(stats: Mapping[str, Any]) -> frozenset[str]:
        """Every column the fitted chains write (one-hot columns expanded)."""
        return frozenset(o for c in stats["chains"] for o in c.get("outputs", [c["output"]]))

    def apply_row(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The transformed vector: keys in input order with transformed ones replaced (one-hot expanded in place),
        then chains writing a new output name, exactly as the SQL path orders columns."""
        if not self._features <= values.keys():
            missing = sorted(self._features - values.keys())
            raise FeatureStoreError(f"cannot transform: feature(s) {', '.join(missing)} missing from the vector",
                                    fix="include every transformed feature (null when unknown)")
        out: dict[str, Any] = {}
        by_output = self._by_output
        for k, v in values.items():
            hit = by_output.get(k)
            if hit is None:
                out[k] = v
            else:
                hit[1](values[hit[0]], out)
        for o, f, write in self._chains:
            if o not in values:
                write(values[f], out)
        return out


_CACHE: OrderedDict[str, Transformer] = OrderedDict()
_CACHE_LOCK = Lock()
_CACHE_SIZE = 32


def transformer(stats: Mapping[str, Any]) -> Transformer:
    """The compiled Transformer for these statistics, cached by their fingerprint (LRU of 32)."""
    key = stats["fingerprint"]
    with _CACHE_LOCK:
        t = _CACHE.get(key)
        if t is not None:
            _CACHE.move_to_end(key)
            return t
    t = Transformer(stats)
    with _CACHE_LOCK:
        _CACHE[key] = t
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return t


def apply_row(values: Mapping[str, Any], stats: Mapping[str, Any]) -> dict[str, Any]:
    """Transform one feature vector with fitted statistics (see Transformer.apply_row)."""
    return transformer(stats).apply_row(values)
