"""Command-line entry point: ``python -m data_streaming_service`` (same as ``.app``)."""

from data_streaming_service.app import main

if __name__ == "__main__":
    main()
