"""Environments. Importing this package registers every built-in environment and scenario."""

from hieralloc.envs import adapters, coverage  # noqa: F401
