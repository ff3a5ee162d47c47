"""Adapters that put the titans-ts models inside other forecasting libraries."""
