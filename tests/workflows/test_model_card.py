"""The bundled model card is generated in full and reproducible from the stored metrics (issue 22)."""

from __future__ import annotations

import json
import re

from tfbsim.workflows.potentials.factory import BUNDLED_DIR
from tfbsim.workflows.training.bundled import MODEL_CARD_NOTES, bundled_config_from_manifest, model_card_text


def test_regenerating_the_card_from_bundled_json_reproduces_the_committed_card():
    manifest = json.loads((BUNDLED_DIR / "bundled.json").read_text())
    committed = (BUNDLED_DIR / "MODEL_CARD.md").read_text()
    regenerated = model_card_text(manifest, bundled_config_from_manifest(manifest))
    headings = re.findall(r"^## .*$", committed, flags=re.M)
    assert "## Known shortfalls of this version (read before use)" in headings
    assert "## Interphase driving force (checked by hand; `pytest -m slow tests/workflows/test_bundled_model.py`)" in headings
    assert re.findall(r"^## .*$", regenerated, flags=re.M) == headings
    assert regenerated == committed  # edit MODEL_CARD.notes.md or the generator, then regenerate


def test_the_notes_numbers_come_from_the_manifest():
    manifest = json.loads((BUNDLED_DIR / "bundled.json").read_text())
    manifest["checks"]["speed_steps_per_s"] = {"201_atoms": 99.9, "1000_atoms": 1.0}
    manifest["checks"]["lattice"]["li"]["model_abc_ang"] = [3.555, 3.555, 3.555]
    text = model_card_text(manifest, bundled_config_from_manifest(manifest))
    assert "99.9 MD steps/s at 201 atoms" in text and "gives a = 3.56 Å" in text
    assert "{" not in text.split("## Known shortfalls")[1]  # every slot filled
    assert MODEL_CARD_NOTES.is_file()
