"""titans-ts: the Titans neural long-term memory for time-series forecasting and genomics."""

__version__ = "0.1.0"

__all__ = ["TitansForecaster", "__version__"]


def __getattr__(name):  # the estimator pulls in torch and Lightning: import it on first use
    if name == "TitansForecaster":
        from titans_ts.forecasting.estimator import TitansForecaster

        return TitansForecaster
    raise AttributeError(f"module 'titans_ts' has no attribute {name!r}")
