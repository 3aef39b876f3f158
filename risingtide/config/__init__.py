"""Configuration: YAML in, a checked ``Config`` out, or every error with its file position.

::

    from risingtide.config import load_config, check_config, ConfigError, ConfigErrors

    config = load_config("config/rising-tide.yaml")          # raises ConfigErrors
    config, errors, warnings = check_config("my.yaml")        # for ``risingtide check``
"""

from __future__ import annotations

from risingtide.config.errors import ConfigError, ConfigErrors
from risingtide.config.loader import check_config, load_config

__all__ = ["ConfigError", "ConfigErrors", "check_config", "load_config"]
