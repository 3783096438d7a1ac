"""The docs that are generated stay true."""

from pathlib import Path

from rnnlab.docgen import config_reference

ROOT = Path(__file__).resolve().parents[1]


def test_config_reference_is_up_to_date():
    on_disk = (ROOT / "docs" / "config.md").read_text()
    assert on_disk == config_reference(), "regenerate: python -m rnnlab.docgen > docs/config.md"

