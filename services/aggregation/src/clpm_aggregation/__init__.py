"""CLPM aggregation service."""
