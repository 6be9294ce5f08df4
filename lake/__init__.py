"""The data lake's Python package: dataset contracts, source replay, packaging and the ``lake`` CLI."""
