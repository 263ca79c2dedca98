"""
The one frozen configuration: sections and keys (:mod:`.sections`), their checks
(:mod:`.checks`), and how the file and the environment become a :class:`Config`
(:mod:`.loading`). Nothing else in PsicoIA reads the environment or the YAML file.
"""

from psicoia.config.checks import ConfigError, endpoint_problem
from psicoia.config.loading import DEFAULT_PATH, ENV_PREFIX, load, replace
from psicoia.config.sections import (
    SECTIONS,
    Config,
    HistoryConfig,
    LimitsConfig,
    LLMConfig,
    LogConfig,
    SafetyConfig,
    ServerConfig,
    StorageConfig,
)

__all__ = [
    "DEFAULT_PATH", "ENV_PREFIX", "SECTIONS", "Config", "ConfigError", "HistoryConfig",
    "LLMConfig", "LimitsConfig", "LogConfig", "SafetyConfig", "ServerConfig", "StorageConfig",
    "endpoint_problem", "load", "replace",
]
