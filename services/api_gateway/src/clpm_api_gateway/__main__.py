"""Run the API gateway: ``python -m clpm_api_gateway [--host H] [--port P]``."""

from __future__ import annotations

import argparse

import uvicorn
from clpm_shared.config import load_settings
from clpm_shared.logs import configure_logging

from clpm_api_gateway.app import create_app
from clpm_api_gateway.local_issuer import check_local_auth_binding


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m clpm_api_gateway",
        description="CLPM API gateway: /data/*, loops, KPIs and diagnostics (FastAPI).",
    )
    settings = load_settings()
    parser.add_argument("--host", default=settings.api.api_host, help="bind address (API_HOST)")
    parser.add_argument("--port", type=int, default=settings.api.api_port, help="port (API_PORT)")
    args = parser.parse_args(argv)
    check_local_auth_binding(settings, args.host)
    configure_logging("api-gateway", settings.runtime.log_level)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_config=None)


if __name__ == "__main__":
    main()
