"""Algorithms, baselines, heuristics and oracles. Importing this package registers them."""

from hieralloc.algos import heuristics, hgrl, iql, ohio, oracles, pg, value  # noqa: F401
