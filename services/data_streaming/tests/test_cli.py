"""Command line and settings of the service: helpful --help, clear errors, loop listing."""

import pytest

from clpm_shared.config import StreamingSettings
from data_streaming_service.app import build_parser, main


def test_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for option in ("--loops N", "--backfill HOURS", "--seed", "--interval", "--duration"):
        assert option in text
    assert "SIGTERM" in text
    assert "STREAM_INTERVAL" in text


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["--loops", "-1"], "--loops"),
        (["--loops", "many"], "--loops"),
        (["--backfill", "-2"], "--backfill"),
        (["--interval", "0"], "--interval"),
    ],
)
def test_bad_option_names_the_option(
    arguments: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(arguments)
    assert done.value.code == 2
    assert named in capsys.readouterr().err


def test_list_loops_shows_ids_types_and_profiles(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--list-loops", "--loops", "20"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["loop_id", "type", "profile", "mode"]
    assert len(lines) == 21
    assert lines[1].split()[:3] == ["TIC208030", "temperature", "healthy"]
    assert lines[2].split()[:3] == ["TIC208031", "temperature", "sticky_valve"]


def test_empty_log_file_setting_means_console_only() -> None:
    assert StreamingSettings(stream_log_file="").stream_log_file is None
    assert StreamingSettings().stream_log_file is not None
