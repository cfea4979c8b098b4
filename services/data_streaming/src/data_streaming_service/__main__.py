"""Command-line entry point: `python -m data_streaming_service`."""


def main() -> None:
    raise SystemExit("data_streaming_service: not implemented yet")


if __name__ == "__main__":
    main()
