"""CLPM kpi-worker service."""
