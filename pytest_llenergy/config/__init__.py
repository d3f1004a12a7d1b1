"""Campaign configuration: pydantic models, safe YAML loading, grid expansion, ids (no pytest, no torch)."""

from pathlib import Path

from pytest_llenergy.config.campaign import CampaignConfig, GridConfig
from pytest_llenergy.config.errors import CampaignError
from pytest_llenergy.config.experiment import (
    DecoderConfig,
    ExperimentConfig,
    ModelSpec,
    WorkloadConfig,
)
from pytest_llenergy.config.ids import config_hash, experiment_id
from pytest_llenergy.config.loading import load_campaign
from pytest_llenergy.config.plan import CampaignPlan, Experiment, expand


def load_plan(path: str | Path) -> CampaignPlan:
    """Load, validate and expand a campaign file in one step."""
    campaign, file_hash = load_campaign(path)
    return expand(campaign, str(path), file_hash)


__all__ = [
    "CampaignConfig",
    "CampaignError",
    "CampaignPlan",
    "DecoderConfig",
    "Experiment",
    "ExperimentConfig",
    "GridConfig",
    "ModelSpec",
    "WorkloadConfig",
    "config_hash",
    "expand",
    "experiment_id",
    "load_campaign",
    "load_plan",
]
