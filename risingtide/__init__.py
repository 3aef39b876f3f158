"""Rising Tide: tiered resilience alerting for a council's customer service centre."""

__version__ = "0.1.0"
