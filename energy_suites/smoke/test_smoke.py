"""Every installed backend, a small matrix of its parameters, warnings captured strictly.

Each warning raised while loading or generating is recorded in the item's result and listed in
the terminal summary; a backend that is not installed is skipped with the reason.
"""

import warnings


def test_smoke(lem_experiment, lem_session, lem_result, energy):
    config = lem_experiment.config
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        workload = lem_session.prepare(config.workload)
        energy.warmup(session=lem_session, workload=workload)
        with energy.measure("generate") as window:
            stats = lem_session.run(workload)
            window.record(input_tokens=stats.input_tokens, output_tokens=stats.output_tokens)
    stats.warnings.extend(f"{w.category.__name__}: {w.message}" for w in caught if str(w.message) not in stats.warnings)
    lem_result.record_generation(stats)
    assert stats.output_tokens == config.workload.num_prompts * config.workload.output_tokens
