"""Humiao's development tooling: the local stack (`humiao up`), the demo city, the
benchmark and code generation. Not part of the product: the production image does not
install it, and no module of `humiao` imports it (tests/unit/test_production_imports.py)."""
