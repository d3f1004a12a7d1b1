"""Curated energy-relevant parameters of vLLM and TensorRT-LLM: typed paths exist, coverage meets the target."""

from __future__ import annotations

import pytest

from pytest_llenergy.backends import introspection
from pytest_llenergy.config.experiment import ExperimentConfig
from pytest_llenergy.config.paths import check_path


@pytest.fixture
def registered():
    """The vllm/tensorrt lists, loaded into introspection the way it loads them itself (idempotent)."""
    from pytest_llenergy.backends import engine_params

    introspection.curated()
    return engine_params


@pytest.mark.parametrize("backend", ["vllm", "tensorrt"])
def test_coverage_meets_the_target(registered, backend):
    typed, total, missing = introspection.coverage(backend)
    assert total >= 40 and typed / total >= 0.90
    report = introspection.format_coverage_report(backend)
    assert report.startswith(f"{backend}: {typed}/{total}")
    assert all(p.name in report for p in missing)


@pytest.mark.parametrize("backend", ["vllm", "tensorrt"])
def test_typed_paths_exist_and_reasons_are_sentences(registered, backend):
    names = [p.name for p in introspection.CURATED[backend]]
    assert len(names) == len(set(names))
    for param in introspection.CURATED[backend]:
        if param.typed_path is not None:
            assert check_path(ExperimentConfig, param.typed_path) is None, param.typed_path
        assert param.reason.endswith(".") and len(param.reason) < 140, param.name


@pytest.mark.parametrize("backend", ["vllm", "tensorrt"])
def test_every_section_field_is_curated_or_named_as_not(registered, backend):
    """A typed field nobody lists as energy-relevant must at least be mentioned in NOT_CURATED (or be plumbing)."""
    plumbing = {"vllm": {"extra.engine", "extra.sampling", "lora.adapter", "speculative.prompt_lookup_min",
                         "speculative.prompt_lookup_max", "speculative.draft_tensor_parallel_size",
                         "lora.max_cpu_loras", "lora.fully_sharded_loras", "seed"},
                "tensorrt": {"extra.build", "extra.runtime", "engine_cache_dir", "force_rebuild"}}[backend]
    curated = {p.typed_path for p in introspection.CURATED[backend]}
    listed = " ".join(f"{k} {v}" for k, v in introspection.NOT_CURATED[backend].items())
    for param in introspection.parameters(backend):
        short = param.path.removeprefix(f"{backend}.")
        if param.path in curated or short in plumbing or short.split(".")[0] in listed:
            continue
        pytest.fail(f"{param.path} is typed but neither curated nor listed in NOT_CURATED")


def test_registering_twice_changes_nothing(registered):
    before = dict(introspection.CURATED)
    registered.register()
    assert introspection.CURATED == before
