"""The main job: every campaign item warms up on a probe of its real shapes (in full once per model
and shape, a short re-warm afterwards), then measures one window.

Run: pytest energy_suites/ --lem-campaign energy_suites/campaigns/quickstart.yaml
"""


def test_inference(lem_experiment, lem_session, lem_result, energy):
    workload = lem_session.prepare(lem_experiment.config.workload)
    energy.warmup(session=lem_session, workload=workload)
    with energy.measure("generate") as window:
        stats = lem_session.run(workload)
        window.record(input_tokens=stats.input_tokens, output_tokens=stats.output_tokens, timeline=stats.timeline)
    lem_result.record_generation(stats)
    # measurement.phases.repeats > 0: phase-resolved averaging over repeated runs (no-op otherwise)
    energy.resolve_phases("generate", lambda: lem_session.run(workload))
