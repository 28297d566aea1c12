"""Environments. Importing this package registers every built-in environment and scenario."""

from hieralloc.envs import coverage  # noqa: F401
