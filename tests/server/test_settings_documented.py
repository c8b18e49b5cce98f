from pathlib import Path

from server.settings import Settings

README = Path(__file__).parents[2] / "README.md"


def test_every_setting_is_documented_in_the_readme() -> None:
    text = README.read_text()
    missing = [name for name in Settings.model_fields if f"`CAPGATE_{name.upper()}`" not in text]
    assert missing == []
