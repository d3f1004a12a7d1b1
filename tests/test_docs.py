"""Generated docs are regenerated from the models, never edited by hand."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_generated_docs_are_current():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_reference_lists_every_campaign_field():
    from pytest_llenergy.config import CampaignConfig, ExperimentConfig

    text = (ROOT / "docs" / "campaign-reference.md").read_text()
    for model in (CampaignConfig, ExperimentConfig):
        for name in model.model_fields:
            assert f"| `{name}` |" in text
