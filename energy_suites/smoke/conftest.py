"""``pytest energy_suites/smoke`` runs its own campaign unless another one is named."""

from pathlib import Path


def pytest_lem_default_campaign(config):
    return str(Path(__file__).with_name("campaign.yaml"))
