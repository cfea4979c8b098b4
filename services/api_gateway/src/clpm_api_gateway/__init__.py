"""CLPM api-gateway service."""
