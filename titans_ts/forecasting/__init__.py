"""Forecasting with the Titans memory: layers, the SiMBA-style backbone, baselines, the estimator."""

__all__ = ["VARIANTS", "ForecastConfig", "TitansForecaster", "build_model"]


def __getattr__(name):  # import the estimator and the models on first use: a module that needs only
    # defaults.py or settings.py does not load them (or Lightning) on the way
    if name == "TitansForecaster":
        from titans_ts.forecasting.estimator import TitansForecaster

        return TitansForecaster
    if name in ("VARIANTS", "ForecastConfig", "build_model"):
        from titans_ts.forecasting import model

        return getattr(model, name)
    raise AttributeError(f"module 'titans_ts.forecasting' has no attribute {name!r}")
