"""Pure-Python reference implementations of the compiled core, for tests and benchmarks."""

from obelisk.testing.reference.book import ReferenceBook

__all__ = ["ReferenceBook"]
