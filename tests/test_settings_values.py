"""Settings typed by people: malformed values are named with the form they must take, and
byte sizes may carry units."""

from __future__ import annotations

from pathlib import Path

import pytest

from cesar_core import Settings
from cesar_core.errors import InvalidOptionsError
from cesar_core.settings import parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1048576", 1048576),
        ("2GiB", 2 * 1024**3),
        ("2gib", 2 * 1024**3),
        ("500MB", 500 * 1000**2),
        ("500 MB", 500 * 1000**2),
        ("1.5G", 1_500_000_000),
        ("1.5Gi", 3 * 1024**3 // 2),
        ("64k", 64_000),
        ("64KiB", 65536),
        ("0", 0),
        ("12B", 12),
        (" 1T ", 1000**4),
    ],
)
def test_sizes_with_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "2 gigs", "-1", "1.5", "GiB", "1e9", "2GiBs", "1,000"])
def test_what_is_not_a_size(text: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        parse_size(text)


def test_every_byte_size_setting_takes_units() -> None:
    settings = Settings.load(
        {
            "CESAR_MAX_UPLOAD_BYTES": "2GiB",
            "CESAR_MAX_DOWNLOAD_BYTES": "500MB",
            "CESAR_INLINE_AUDIO_BYTES": "64KiB",
        }
    )
    assert settings.max_upload_bytes == 2 * 1024**3
    assert settings.max_download_bytes == 500 * 1000**2
    assert settings.inline_audio_bytes == 65536
    sizes = [name for name in Settings.__attrs_attrs__ if name.name.endswith("_bytes")]
    assert len(sizes) >= 3
    for field in sizes:
        loaded = Settings.load({f"CESAR_{field.name.upper()}": "1KiB"})
        assert getattr(loaded, field.name) == 1024, field.name


@pytest.mark.parametrize(
    ("variable", "value", "form"),
    [
        ("CESAR_PORT", "abc", "a whole number"),
        ("CESAR_WORKERS", "2.5", "a whole number"),
        ("CESAR_MAX_UPLOAD_BYTES", "2 gigs", "a size in bytes"),
        ("CESAR_GRACE_SECONDS", "soon", "a number"),
        ("CESAR_ALLOW_DOWNLOAD", "maybe", "true or false"),
    ],
)
def test_a_malformed_variable_is_named(variable: str, value: str, form: str) -> None:
    with pytest.raises(InvalidOptionsError) as raised:
        Settings.load({variable: value})
    message = str(raised.value)
    assert variable in message
    assert form in message
    assert repr(value) in message


def test_a_malformed_file_value_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "cesar.toml"
    config.write_text('port = "eighty"\nmax_upload_bytes = "1.5G"\n')
    with pytest.raises(InvalidOptionsError, match=r"port in .*cesar\.toml must be a whole number"):
        Settings.load({"CESAR_CONFIG": str(config)})
    config.write_text('max_upload_bytes = "1.5G"\nport = 8080\n')
    settings = Settings.load({"CESAR_CONFIG": str(config)})
    assert (settings.max_upload_bytes, settings.port) == (1_500_000_000, 8080)


def test_flags_win_and_are_checked_too() -> None:
    assert Settings.load({"CESAR_PORT": "abc"}, port=9000).port == 9000
    with pytest.raises(InvalidOptionsError, match="port must be a whole number"):
        Settings.load({}, port="x")
