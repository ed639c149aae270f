"""docs/operations.md's configuration reference is generated from the settings model and
`tether serve`'s options: it must be what they say now."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import ROOT, run_cli
from tether.config import Settings
from tether.ops import reference

OPERATIONS = ROOT / "docs" / "operations.md"
REGENERATE = "run `tether config-reference --write docs/operations.md`"


class TestConfigurationReference:
    def test_the_documented_reference_matches_the_settings_model(self) -> None:
        documented = reference.current(OPERATIONS.read_text(encoding="utf-8"))
        assert documented == reference.render(), f"docs/operations.md is out of date: {REGENERATE}"

    def test_it_names_every_setting_and_serve_option(self) -> None:
        rendered = reference.render()
        for name, field in Settings.model_fields.items():
            assert f"`TETHER_{name.upper()}`" in rendered
            assert field.description, f"{name} needs a description for the reference"
        for option in ("`--host`", "`TETHER_PORT`", "`TETHER_WORKERS`", "`--no-migrate`"):
            assert option in rendered

    def test_a_changed_setting_shows_as_drift(self) -> None:
        document = OPERATIONS.read_text(encoding="utf-8")
        drifted = document.replace("`TETHER_LOG_LEVEL`", "`TETHER_LOG_LEVELS`", 1)
        assert reference.updated(drifted) == document
        with pytest.raises(reference.MarkersMissing):
            reference.current("# no markers here")

    async def test_the_command_checks_and_rewrites_a_file(self, tmp_path: Path) -> None:
        copy = tmp_path / "operations.md"
        copy.write_text(OPERATIONS.read_text(encoding="utf-8"), encoding="utf-8")
        checked = await run_cli({}, tmp_path, "config-reference", "--check", str(copy))
        assert checked.returncode == 0, checked.stderr

        stale = copy.read_text(encoding="utf-8").replace("Largest request body", "Body")
        copy.write_text(stale, encoding="utf-8")
        checked = await run_cli({}, tmp_path, "config-reference", "--check", str(copy))
        assert checked.returncode == 1
        assert "config-reference --write" in checked.stderr

        written = await run_cli({}, tmp_path, "config-reference", "--write", str(copy))
        assert written.returncode == 0, written.stderr
        assert copy.read_text(encoding="utf-8") == OPERATIONS.read_text(encoding="utf-8")
