"""Alias rules: which names an alias may take, when a version may be promoted to one, and how a move is recorded.

An alias (champion, challenger, ...) is the registry's only mutable pointer: a row in fs_meta.model_aliases, every
set/move/remove of which is appended to fs_meta.alias_history.
"""

from __future__ import annotations

from typing import Any

from ..errors import FeatureStoreError
from ..timeutil import utcnow
from ..warehouse import Warehouse
from .config import check_alias
from .rows import alias_version, current_user
from .schema import ALIAS_HISTORY, ALIASES
from .version import ModelVersion

RESERVED_ALIASES = {"latest"}


def check_settable(alias: str) -> str:
    """An alias name that can be set: well-formed and not reserved."""
    check_alias(alias)
    if alias in RESERVED_ALIASES:
        raise FeatureStoreError(f"alias {alias!r} is reserved (it always means the newest version)",
                                fix="pick another name, e.g. champion")
    return alias


def check_promotion(m: ModelVersion, alias: str, reason: str | None, force: bool) -> str | None:
    """The reason to record for pointing `alias` at `m`. An alias is how a model gets used, so the version's latest
    validation must have passed, unless `force` (then the reason says so)."""
    if m.status == "deleted":
        raise FeatureStoreError(f"model {m.ref} is deleted; an alias cannot point at it",
                                fix="pick an active version; see `fs model list`")
    status = (m.validation or {}).get("status")
    if status != "passed":
        if not force:
            raise FeatureStoreError(
                f"model {m.ref} has " + ("not been validated" if status is None else "failed its latest validation")
                + f"; alias {alias!r} would put it in use",
                fix=f"run `fs model validate {m.ref}` (and fix what fails), or pass --force to override "
                "(recorded in the alias history)")
        reason = f"forced (validation: {status or 'none'})" + (f": {reason}" if reason else "")
    return reason


def move_alias(con: Warehouse, name: str, alias: str, version: int | None, reason: str | None) -> dict[str, Any]:
    """Point `alias` at `version` (None removes it) and append the change to alias_history; a no-op move is not
    logged. Run it inside `in_transaction`: the history's seq is allocated here."""
    old = alias_version(con, name, alias)
    if old == version:
        if version is None:
            raise FeatureStoreError(f"model {name} has no alias {alias!r}", fix="see `fs model show`")
        return {"name": name, "alias": alias, "old_version": old, "new_version": version,
                "action": "unchanged"}  # nothing changed, nothing logged
    now, user = utcnow(), current_user()
    action = "remove" if version is None else ("set" if old is None else "move")
    con.execute(f"delete from {ALIASES} where name = ? and alias = ?", [name, alias])
    if version is not None:
        con.execute(f"insert into {ALIASES} (name, alias, version, updated_at, updated_by) "
                    "values (?, ?, ?, ?, ?)", [name, alias, version, now, user])
    seq = con.execute(f"select coalesce(max(seq), 0) + 1 from {ALIAS_HISTORY} where name = ? and alias = ?",
                      [name, alias]).fetchall()[0][0]
    con.execute(f"insert into {ALIAS_HISTORY} values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [name, alias, seq, action, old, version, now, user, reason])
    return {"name": name, "alias": alias, "old_version": old, "new_version": version, "action": action}
