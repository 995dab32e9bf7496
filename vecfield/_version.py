"""The package version, the one source that pyproject.toml, checkpoints and stores read."""

__version__ = "0.1.0"
