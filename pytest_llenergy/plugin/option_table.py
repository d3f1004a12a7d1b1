"""Defaults and choices of the campaign fields that ``--lem-*`` options override, as plain values.

``pytest --help`` and argparse need them when the plugin loads; reading them from the pydantic
campaign schema would import it (and its dependencies) into every pytest run of the venv. The
table is checked against the schema by tests/test_plugin_import.py, which prints the current
table when they differ.
"""

from __future__ import annotations

from typing import Any

FIELDS: dict[str, tuple[Any, tuple[str, ...] | None]] = {
    'order': ('interleaved', ('interleaved', 'shuffled', 'grouped')),
    'seed': (None, None),
    'cycles': (1, None),
    'results_dir': ('lem-results', None),
    'measurement.energy_source': ('auto', None),
    'measurement.sample_hz': (10.0, None),
    'measurement.baseline.enabled': (True, None),
    'gaps.between_experiments': ('adaptive', None),
    'gaps.between_cycles': ('adaptive', None),
    'gaps.max_wait': (120.0, None),
    'force_cold_start': (False, None),
    'group_by': ([], None),
    'notifications.webhook_url': (None, None),
    'carbon.grid_intensity_g_per_kwh': (None, None),
    'carbon.pue': (1.0, None),
    'carbon.price_per_kwh': (None, None),
    'carbon.currency': ('USD', None),
    'dispatch.mode': ('local', ('local', 'docker', 'auto')),
    'dispatch.strategy': ('ephemeral', ('ephemeral', 'persistent')),
    'dispatch.keep_containers': (False, None),
}

