"""What the HTTP services (api-gateway, diagnostics) share: problem details and the access log.

Needs FastAPI: install ``clpm-shared[web]``. The workers never import this package.
"""
