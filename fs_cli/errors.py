"""One error type for everything a user can get wrong: it says what is wrong and how to fix it."""

from __future__ import annotations

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
