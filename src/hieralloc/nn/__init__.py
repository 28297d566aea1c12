"""Small neural building blocks shared by every method."""

from hieralloc.nn.mlp import mlp

__all__ = ["mlp"]
