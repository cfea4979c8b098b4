"""CLPM diagnostics service."""
