"""Command-line entry point: `python -m clpm_kpi_worker`."""


def main() -> None:
    raise SystemExit("clpm_kpi_worker: not implemented yet")


if __name__ == "__main__":
    main()
