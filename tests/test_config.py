from __future__ import annotations

from pathlib import Path

import pytest

from leadml import ConfigError, Settings, load_settings
from leadml.config import DEFAULT_SETTINGS
from leadml.rules import DEFAULT_RULES

ROOT = Path(__file__).parents[1]


def test_the_shipped_default_file_matches_the_built_in_defaults():
    assert load_settings(DEFAULT_SETTINGS) == Settings()


def test_the_packaged_configs_are_the_repositorys_editable_copies():
    """Users start from configs/; the package reads its own copy (a wheel has no configs/)."""
    packaged = DEFAULT_SETTINGS.parent
    assert DEFAULT_RULES.parent == packaged
    assert packaged != ROOT / "configs"
    names = sorted(path.name for path in (ROOT / "configs").glob("*.yaml"))
    assert names == sorted(path.name for path in packaged.glob("*.yaml"))
    assert {"default.yaml", "rules.yaml"} <= set(names)
    for name in names:
        assert (packaged / name).read_bytes() == (ROOT / "configs" / name).read_bytes(), (
            f"src/leadml/configs/{name} differs from configs/{name}: copy the edited one over"
        )


def test_a_partial_file_keeps_the_other_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("target:\n  stage: opportunity\n")
    settings = load_settings(path)
    assert settings.target.stage == "opportunity"
    assert settings.target.horizon_days == Settings().target.horizon_days


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("target:\n  horizon_day: 30\n", "target.horizon_day: unknown key"),
        ("targets:\n  stage: sql\n", "targets: unknown key"),
        ("target:\n  horizon_days: soon\n", "target.horizon_days: Input should be a valid integer"),
        ("target:\n  horizon_days: -3\n", "target.horizon_days: Input should be greater than 0"),
        ("target:\n  stage: signed\n", "target.stage: Input should be 'lead', 'mql'"),
        ("target:\n  stage: lead\n", "the target stage cannot be 'lead'"),
        (
            "data:\n  event_types:\n    page_view: {stage: curiosity}\n",
            "data.event_types.page_view.stage: Input should be 'awareness'",
        ),
        (
            "data:\n  event_types:\n    a: {stage: awareness, aliases: [x]}\n"
            "    b: {stage: decision, aliases: [X]}\n",
            "raw event type 'X' maps to both 'a' and 'b'",
        ),
        ("- just\n- a list\n", "expected a mapping at the top level"),
        ("target: [\n", "not valid YAML"),
    ],
)
def test_bad_settings_name_the_file_and_the_key(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)


def test_all_problems_in_a_file_are_reported_together(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("target:\n  horizon_day: 30\n  stage: nope\ndomains:\n  freemail: []\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert "target.horizon_day" in message
    assert "target.stage" in message
    assert "domains.freemail" in message


def test_missing_file():
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_settings("/no/such/file.yaml")
