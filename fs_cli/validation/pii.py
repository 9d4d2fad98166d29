"""PII guards: personal data must not reach a feature group.

1. Lineage: columns marked `config.meta.pii: true` anywhere upstream (sources, seeds, models) must not feed a feature
   group. dbt has no column-level lineage, so the check is static and conservative: a pii column name used as an
   identifier in the SQL of the feature group or of any model between it and the pii column fails the check, as
   does a feature-group column that is itself marked pii.
2. Content: string features are scanned for e-mail addresses, phone numbers, payment card numbers (Luhn-valid) and
   IBANs (mod-97-valid). The warehouse pre-filters with a loose regex; Python confirms each candidate value.
"""

from __future__ import annotations

import re
from typing import Any

from ..declarations.model import FeatureGroup
from .results import CheckResult

STRING_TYPES = ("char", "text", "string", "varchar")
SCAN_LIMIT = 200  # distinct matching values confirmed per column and detector

# (name, loose SQL regex for the pre-filter, strict Python regex, extra validator)
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
PHONE = re.compile(r"(?<![\w.])\+?\d[\d ().-]{7,18}\d(?![\w.])")
CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_ok(text: str) -> bool:
    s = text.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    rearranged = s[4:] + s[:4]
    num = "".join(str(int(c, 36)) for c in rearranged)
    return int(num) % 97 == 1


def _phone(m: str) -> bool:
    digits = re.sub(r"\D", "", m)
    return 9 <= len(digits) <= 15 and not re.fullmatch(r"\d{4}-\d{2}-\d{2}.*", m.strip())


def _card(m: str) -> bool:
    digits = re.sub(r"\D", "", m)
    return 13 <= len(digits) <= 19 and luhn_ok(digits)


DETECTORS: list[tuple[str, str, re.Pattern, Any]] = [
    ("email", r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}", EMAIL, None),
    ("card_number", r"\d[\d -]{11,}\d", CARD, _card),
    ("iban", r"[A-Z]{2}[0-9]{2} ?[A-Z0-9]", IBAN, iban_ok),
    ("phone", r"\d[\d ().-]{7,}\d", PHONE, _phone),
]


def find_pii(value: str) -> list[str]:
    """Kinds of PII found in one string (confirmed: Luhn for cards, mod 97 for IBANs)."""
    kinds = []
    taken: list[tuple[int, int]] = []  # spans of confirmed cards/IBANs: their digit runs are not phone numbers
    for kind, _, rx, ok in DETECTORS:
        for m in rx.finditer(value):
            if kind == "phone" and any(m.start() < b and a < m.end() for a, b in taken):
                continue
            if ok is None or ok(m.group(0)):
                if kind not in kinds:
                    kinds.append(kind)
                taken.append(m.span())
    return kinds


def mask(value: str) -> str:
    """Enough to find the row, not enough to leak the value into logs and the results table."""
    v = str(value)
    return v[:2] + "*" * max(0, min(len(v) - 4, 12)) + v[-2:] if len(v) > 4 else "*" * len(v)


def is_string(data_type: str | None) -> bool:
    t = (data_type or "").lower()
    return any(s in t for s in STRING_TYPES)


def scan_content(wh, fg: FeatureGroup) -> list[CheckResult]:
    """Scan the candidate's string features (on Warehouse `wh`: the loose regex runs in the warehouse)."""
    results = []
    for col in fg.features:
        if not is_string(col.data_type):
            continue
        q = wh.quote(col.name)
        found: dict[str, list[str]] = {}
        rows_hit = 0
        for kind, loose, _rx, _ok in DETECTORS:
            vals = [r[0] for r in wh.fetchall(
                f"select distinct {q} from {fg.relation} where {wh.regex_match(q, '?')} limit {SCAN_LIMIT}",
                [loose])]
            for v in vals:
                if kind in find_pii(v):
                    found.setdefault(kind, []).append(v)
        if found:
            all_vals = sorted({v for vs in found.values() for v in vs})
            rows_hit = len(all_vals)
            samples = [{"column": col.name, "kind": k, "value": mask(v)} for k, vs in found.items() for v in vs[:3]]
            results.append(CheckResult(
                f"pii:content:{col.name}", "pii", "fail", column=col.name,
                message=f"{', '.join(sorted(found))} found in {rows_hit} distinct value(s) of string feature {col.name}",
                metrics={"kinds": sorted(found), "distinct_values": rows_hit}, samples=samples))
        else:
            results.append(CheckResult(f"pii:content:{col.name}", "pii", "pass", column=col.name,
                                       message="no e-mail, phone, card number or IBAN found"))
    return results


_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_JINJA_COMMENTS = re.compile(r"\{#.*?#\}", re.S)


def _identifiers(sql: str) -> set[str]:
    sql = _JINJA_COMMENTS.sub(" ", sql)
    sql = _COMMENTS.sub(" ", sql)
    sql = re.sub(r"'(?:[^']|'')*'", " ", sql)  # string literals are not column references
    return {t.lower() for t in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", sql)}


def _pii_columns(node) -> set[str]:
    out = set()
    for name, col in (getattr(node, "columns", None) or {}).items():
        meta = dict(getattr(col, "meta", None) or {})
        cfg = getattr(col, "config", None)
        if cfg is not None and getattr(cfg, "meta", None):
            meta.update(cfg.meta)
        if meta.get("pii"):
            out.add(name.lower())
    return out


def lineage_check(manifest, fg: FeatureGroup) -> CheckResult:
    """Fail when a column marked pii upstream is used on the way to the feature group (see module doc).

    Taint propagates by name: a node outputs the pii columns declared on it, plus every tainted column of a parent
    that its SQL mentions. The feature group fails if its SQL mentions a column a parent outputs as tainted.
    """
    nodes = {**manifest.nodes, **manifest.sources}
    memo: dict[str, dict[str, str]] = {}  # node -> {tainted column: where it was marked pii}

    def parents(uid: str) -> list[str]:
        node = nodes.get(uid)
        return [p for p in (getattr(getattr(node, "depends_on", None), "nodes", []) or []) if p in nodes]

    def tainted(uid: str, stack: frozenset = frozenset()) -> dict[str, str]:
        if uid in memo:
            return memo[uid]
        if uid in stack:
            return {}
        node = nodes[uid]
        out = {c: getattr(node, "name", uid) for c in _pii_columns(node)}
        upstream: dict[str, str] = {}
        for p in parents(uid):
            upstream.update(tainted(p, stack | {uid}))
        used = _identifiers(getattr(node, "raw_code", "") or "")
        out.update({c: where for c, where in upstream.items() if c in used and c not in out})
        memo[uid] = out
        return out

    offenders = [{"column": c.name, "pii_in": fg.name} for c in fg.columns if c.pii]
    used = _identifiers(getattr(nodes.get(fg.unique_id), "raw_code", "") or "")
    for p in parents(fg.unique_id):
        for col, where in tainted(p).items():
            if col in used:
                offenders.append({"column": col, "pii_in": where, "via": getattr(nodes[p], "name", p)})
    if offenders:
        cols = sorted({o["column"] for o in offenders})
        return CheckResult("pii:lineage", "lineage", "fail",
                           message=f"columns marked pii upstream feed this feature group: {', '.join(cols)}",
                           metrics={"columns": cols}, samples=offenders[:10])
    return CheckResult("pii:lineage", "lineage", "pass", message="no column marked pii upstream is used")
