"""CLPM data-streaming service."""
