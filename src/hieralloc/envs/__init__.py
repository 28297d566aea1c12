"""Environments. Importing this package registers every built-in environment and scenario."""

from hieralloc.envs import adapters, combat, coverage, mobility, navigation, supply  # noqa: F401
