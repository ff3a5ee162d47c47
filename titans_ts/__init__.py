"""titans-ts: the Titans neural long-term memory for time-series forecasting and genomics."""

__version__ = "0.1.0"
