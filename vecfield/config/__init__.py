"""Typed, validated configuration: frozen dataclasses loaded from YAML with ``key=value`` overrides.

The machinery lives here (``typed``); each domain keeps its configs next to its code:
``vecfield.data.config`` (DatasetConfig), ``vecfield.forecast.config`` (ForecastConfig, ModelConfig,
RolloutConfig), ``vecfield.images.config`` (ImageConfig), ``vecfield.train.config`` (TrainerConfig).
"""

from vecfield.config.typed import apply_overrides, from_dict, load_config, read_config_file, to_dict

__all__ = ["apply_overrides", "from_dict", "load_config", "read_config_file", "to_dict"]
