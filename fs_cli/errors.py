"""One error type for everything a user can get wrong: it says what is wrong and how to fix it. A declaration's
problems are collected (`Problems`) and raised together as one DeclarationError."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

# Exit codes of `fs` (documented in `fs --help` and the README's command reference).
EXIT_OK = 0
EXIT_FAILED = 1  # the command ran and found a problem: failed checks, drift, staleness, a breaking change
EXIT_USAGE = 2  # bad usage or a FeatureStoreError: a problem the user fixes before the command can run
EXIT_INTERNAL = 3  # an unexpected exception (a bug)
EXIT_INTERRUPTED = 130  # Ctrl-C


class FeatureStoreError(Exception):
    """A problem the user can fix. `fix` is the concrete next step, shown under the message."""

    def __init__(self, message: str, fix: str | None = None):
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return self.message if not self.fix else f"{self.message}\n  fix: {self.fix}"


class DeclarationError(FeatureStoreError):
    """Invalid feature-store metadata in a model's YAML; raised before anything is written."""

    def __init__(self, problems: list[FeatureStoreError]):
        self.problems = problems
        lines = [f"{len(problems)} invalid feature-store declaration(s):"]
        for p in problems:
            lines.append(f"- {p.message}")
            if p.fix:
                lines.append(f"    fix: {p.fix}")
        super().__init__("\n".join(lines))

    def __str__(self) -> str:
        return self.message


class Problems:
    """Every problem of one declaration, collected and then raised together as one DeclarationError: the user fixes
    them all in one pass instead of meeting them one run at a time.

    Each problem is located: `where` names the declaration ("model fg_x (models/...yml)") and prefixes every message;
    `field_prefix` ("config.meta.fs.") is put before a field name given to `add(..., field=)`. `within()` gives a view
    with another location that adds to the same list (one declaration inside a list, one column of a model)."""

    def __init__(self, where: str = "", field_prefix: str = "", errors: list[FeatureStoreError] | None = None):
        self.where = where
        self.field_prefix = field_prefix
        self.errors: list[FeatureStoreError] = [] if errors is None else errors

    def add(self, what: str, fix: str | None = None, *, field: str | None = None) -> None:
        """Add `<where>: <what>`, or `<where>: <field_prefix><field> <what>` when the problem is in a field."""
        self.errors.append(FeatureStoreError(self._located(what if field is None else self._field(field, what)), fix))

    def on_field(self, field: str) -> bool:
        """Whether a problem was added on `field` at this location (a later check may depend on the field being valid)."""
        start = self._located(self._field(field, ""))
        return any(e.message.startswith(start) for e in self.errors)

    def _field(self, field: str, what: str) -> str:
        return f"{self.field_prefix}{field} {what}"

    def _located(self, message: str) -> str:
        return f"{self.where}: {message}" if self.where else message

    def append(self, error: FeatureStoreError) -> None:
        """Add an error built elsewhere, as it is (a DeclarationError: each of its problems)."""
        self.extend(error.problems if isinstance(error, DeclarationError) else [error])

    def extend(self, errors: Iterable[FeatureStoreError]) -> None:
        self.errors.extend(errors)

    def within(self, where: str | None = None, field_prefix: str | None = None) -> Problems:
        """The same collection, adding at another location (unchanged parts are kept)."""
        return Problems(self.where if where is None else where,
                        self.field_prefix if field_prefix is None else field_prefix, self.errors)

    @contextmanager
    def collecting(self) -> Iterator[None]:
        """Collect a FeatureStoreError raised inside the block instead of letting it end the check."""
        try:
            yield
        except FeatureStoreError as e:
            self.append(e)

    def raise_if_any(self) -> None:
        if self.errors:
            raise DeclarationError(list(self.errors))

    def __len__(self) -> int:
        return len(self.errors)

    def __iter__(self) -> Iterator[FeatureStoreError]:
        return iter(self.errors)
