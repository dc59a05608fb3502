"""World Weaver: long-term memory for AI agents."""

__version__ = "0.1.0"
__all__ = ["__version__"]
