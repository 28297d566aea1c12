"""User-facing error types.

Every error a user can cause (bad config, unknown name, corrupt file, infeasible problem) is a
:class:`HierallocError`. The CLI prints its message on one line and exits with ``exit_code``;
nothing else is allowed to escape to the user as a traceback.
"""

from __future__ import annotations


class HierallocError(Exception):
    """Base class of every error whose message is meant for the user."""

    exit_code = 2


class ConfigError(HierallocError):
    """A configuration value is unknown, of the wrong type or out of range.

    The message names the key, what is valid, and where the value came from.
    """

    def __init__(self, key: str, problem: str, source: str | None = None) -> None:
        self.key = key
        self.problem = problem
        self.source = source
        where = f" (from {source})" if source else ""
        super().__init__(f"config key '{key}'{where}: {problem}")


class UnknownNameError(HierallocError):
    """A name (environment, algorithm, scenario, preset, dataset) is not registered."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = known
        super().__init__(
            f"unknown {kind} '{name}'; known {kind}s: {', '.join(sorted(known)) or '(none)'}"
            f" (see 'hieralloc list')"
        )


class DataError(HierallocError):
    """A data file or data directory is missing, malformed or fails verification."""


class CheckpointError(HierallocError):
    """A checkpoint or run directory is missing, corrupt or from a different run."""


class MissingDependencyError(HierallocError):
    """An optional package is not installed; the message names the extra to install."""


class IncompatibleError(HierallocError):
    """An algorithm cannot run on an environment (capability flags disagree)."""
