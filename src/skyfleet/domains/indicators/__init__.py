"""Indicators: per-site numbers (capacity, API health, audit time) kept as time series with a retention."""
