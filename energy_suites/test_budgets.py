"""An example to copy: energy budgets on your own code, with the ``energy`` fixture.

A breach fails the test with a plain sentence; run with ``--lem-energy-source replay`` on a
CPU-only CI runner, or on a GPU runner as is.
"""

import pytest


@pytest.mark.energy_budget(energy="5 kJ", mean_power="750 W", adjusted=False)
def test_matrix_work_stays_within_budget(energy):
    import numpy as np

    a = np.random.default_rng(0).standard_normal((256, 256))
    with energy.measure("matmul") as window:
        for _ in range(20):
            a = np.tanh(a @ a.T / 256)
        window.record(output_tokens=20)
    assert np.isfinite(a).all()
