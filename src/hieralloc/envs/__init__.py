"""Environments. Importing this package registers every built-in environment and scenario."""

from hieralloc.envs import adapters, coverage, mobility, supply  # noqa: F401
