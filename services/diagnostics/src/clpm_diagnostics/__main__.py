"""Command-line entry point: `python -m clpm_diagnostics`."""


def main() -> None:
    raise SystemExit("clpm_diagnostics: not implemented yet")


if __name__ == "__main__":
    main()
