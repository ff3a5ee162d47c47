"""titans-ts: the Titans neural long-term memory for time-series forecasting and genomics."""

from titans_ts.version import __version__

__all__ = ["TitansForecaster", "__version__"]


def __getattr__(name):  # the estimator pulls in torch and Lightning: import it on first use
    if name == "TitansForecaster":
        from titans_ts.forecasting.estimator import TitansForecaster

        return TitansForecaster
    raise AttributeError(f"module 'titans_ts' has no attribute {name!r}")
