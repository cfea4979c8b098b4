"""Command-line entry point: `python -m clpm_aggregation`."""


def main() -> None:
    raise SystemExit("clpm_aggregation: not implemented yet")


if __name__ == "__main__":
    main()
