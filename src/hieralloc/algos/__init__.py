"""Algorithms, baselines, heuristics and oracles. Importing this package registers them."""

from hieralloc.algos import heuristics, hgrl, iql, lpmarl, ohio, oracles, pg, value  # noqa: F401
