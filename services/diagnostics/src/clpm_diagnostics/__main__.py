"""Run the diagnostics service: ``python -m clpm_diagnostics [--host H] [--port P]``."""

from __future__ import annotations

import argparse

import uvicorn

from clpm_diagnostics.app import create_app
from clpm_shared.config import load_settings
from clpm_shared.logs import configure_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m clpm_diagnostics",
        description=(
            "CLPM diagnostics service (FastAPI): POST /diagnose, POST /diagnose/batch, "
            "GET /oscillation-clusters, /health, /ready, OpenAPI at /docs. Settings come from "
            "the environment (DIAG_HOST, DIAG_PORT, DATABASE_URL or "
            "POSTGRES_*, TIMESERIES_BACKEND, INFLUXDB_*, LOG_LEVEL)."
        ),
    )
    parser.add_argument("--host", default=None, help="bind address (default: DIAG_HOST)")
    parser.add_argument("--port", type=int, default=None, help="port (default: DIAG_PORT, 8050)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = load_settings()
    host = args.host or settings.diagnostics.diag_host
    port = args.port or settings.diagnostics.diag_port
    configure_logging("diagnostics", settings.runtime.log_level)
    # access_log=False: clpm_shared.web.access_log writes it
    uvicorn.run(create_app(settings), host=host, port=port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
