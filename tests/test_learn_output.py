"""`leadml rules learn` never writes its table over the hand rules it learns against.

``--out`` naming the ``--rules`` file (by the same path, a relative one or a symbolic link, or
the shipped rules when ``--rules`` is left out) is a usage error (exit 2) raised before any
work: the data folder here holds no tables, so reading it would be exit 3 instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadml.cli import app
from leadml.errors import ConfigError
from leadml.jobs import learn_rules
from leadml.rules import DEFAULT_RULES

runner = CliRunner()

HAND = """\
grades:
  fit: {A: {from: 10}, B: {below: 10}}
  engagement: {"1": {}}
mql:
  threshold: 71  # the threshold sales agreed to
"""


@pytest.fixture
def hand(tmp_path) -> Path:
    (tmp_path / "empty").mkdir()  # a data folder without tables: reading it is exit 3
    path = tmp_path / "rules" / "hand.yaml"
    path.parent.mkdir()
    path.write_text(HAND)
    return path


def _learn(tmp_path: Path, out: str | Path, rules: str | Path | None):
    args = ["rules", "learn", "--data", str(tmp_path / "empty"), "--out", str(out)]
    return runner.invoke(app, args + ([] if rules is None else ["--rules", str(rules)]))


@pytest.mark.parametrize("way", ["same path", "relative", "link beside", "link elsewhere"])
def test_rules_learn_refuses_to_write_over_its_hand_rules(hand, tmp_path, monkeypatch, way):
    monkeypatch.chdir(tmp_path)
    out, rules = hand, hand
    if way == "relative":
        out, rules = Path("rules/../rules/hand.yaml"), Path("rules/hand.yaml")
    elif way == "link beside":
        out = hand.with_name("current.yaml")
        out.symlink_to("hand.yaml")
    elif way == "link elsewhere":
        (tmp_path / "deploy").mkdir()
        out = tmp_path / "deploy" / "rules.yaml"
        out.symlink_to(hand)

    result = _learn(tmp_path, out, rules)
    assert result.exit_code == 2, result.output
    assert f"--out {out} is the hand rules file --rules {rules}" in result.stderr
    assert "would replace it; nothing was written" in result.stderr
    assert "Traceback" not in result.output
    assert hand.read_text() == HAND
    assert sorted(p.name for p in hand.parent.iterdir()) == sorted(
        {"hand.yaml", Path(out).name} if way == "link beside" else {"hand.yaml"}
    )  # no staging file either
    if way.startswith("link"):
        assert Path(out).is_symlink()

    # Another --out goes on to read the data (and fails there): the refusal is what stopped it.
    other = _learn(tmp_path, tmp_path / "learned.yaml", rules)
    assert other.exit_code == 3, other.output


def test_rules_learn_refuses_to_write_over_the_shipped_rules(hand, tmp_path):
    before = DEFAULT_RULES.read_bytes()
    result = _learn(tmp_path, DEFAULT_RULES, None)
    assert result.exit_code == 2, result.output
    assert f"--out {DEFAULT_RULES} is the hand rules file --rules {DEFAULT_RULES}" in result.stderr
    assert DEFAULT_RULES.read_bytes() == before


def test_learn_rules_refuses_before_reading_the_data(hand, tmp_path):
    link = tmp_path / "link.yaml"
    os.symlink(hand, link)
    with pytest.raises(ConfigError, match="is the hand rules file"):
        learn_rules(tmp_path / "empty", link, rules=str(hand))
    assert hand.read_text() == HAND
