"""Typed, validated configuration: frozen dataclasses loaded from YAML with ``key=value`` overrides."""

from vecfield.config.dataset import DatasetConfig, GridConfig, SourceConfig, SplitConfig, TimeConfig
from vecfield.config.typed import apply_overrides, from_dict, load_config, to_dict

__all__ = [
    "DatasetConfig",
    "GridConfig",
    "SourceConfig",
    "SplitConfig",
    "TimeConfig",
    "apply_overrides",
    "from_dict",
    "load_config",
    "to_dict",
]
