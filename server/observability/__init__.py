"""Metrics, traces and authorization decision records (DESIGN §10)."""
