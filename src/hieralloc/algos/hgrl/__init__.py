"""HGRL (hierarchical gradient-informed RL, paper 000 in ../shared/papers): GDI-Net and, later, the
hierarchical multi-agent learner. Importing this package is cheap and registers nothing; import
:mod:`hieralloc.algos.hgrl.gdinet` (torch) or :mod:`hieralloc.algos.hgrl.plots` (matplotlib)
where needed. See docs/methods/hgrl.md.
"""
