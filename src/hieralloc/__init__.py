"""hieralloc: hierarchical multi-agent RL for dynamic resource allocation."""

__version__ = "0.1.0"

__all__ = ["__version__"]
