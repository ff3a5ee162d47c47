"""Forecasting with the Titans memory: layers, the SiMBA-style backbone, baselines, the estimator."""

from titans_ts.forecasting.estimator import TitansForecaster
from titans_ts.forecasting.model import VARIANTS, ForecastConfig, build_model

__all__ = ["VARIANTS", "ForecastConfig", "TitansForecaster", "build_model"]
