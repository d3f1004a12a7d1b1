"""An example to copy: energy budgets on your own code, with the ``energy`` fixture.

A breach fails the test with a plain sentence that names the figure it judged (baseline-adjusted
energy where an idle baseline exists, raw energy otherwise); run with ``--lem-energy-source
replay`` on a CPU-only CI runner, or on a GPU runner as is.
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


@pytest.mark.energy_budget(energy_per_output_token="1 J")
def test_tokens_counted_after_the_window(energy):
    """The count is often known only after the work: ``record()`` after the block counts too, and a
    window of a few ms still has its own figure (never 0 J, never the previous test's)."""
    import numpy as np

    a = np.random.default_rng(1).standard_normal((128, 128))
    with energy.measure("generate") as window:
        out = [np.tanh(a @ a.T / 128) for _ in range(4)]
    window.record(output_tokens=5 * len(out))
    assert len(out) == 4
