"""Backend sections' derived keywords: TensorRT calibration names, torch.compile options, advisories, bitsandbytes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pytest_llenergy.config.tensorrt_section import TensorrtCalibration, TensorrtExtra
from pytest_llenergy.config.transformers_section import TransformersConfig, TransformersQuantization


def test_calibration_keywords_are_tensorrts_names():
    calib = TensorrtCalibration(dataset="c4", num_batches=8, batch_size=2, max_seq_length=256)
    assert calib.calib_kwargs() == {"calib_dataset": "c4", "calib_batches": 8, "calib_batch_size": 2,
                                    "calib_max_seq_length": 256}
    assert TensorrtCalibration().calib_kwargs() == {}


def test_extra_keys_owned_by_typed_fields_are_refused():
    with pytest.raises(ValidationError) as info:
        TensorrtExtra(build={"max_batch_size": 4})
    assert "extra.build.max_batch_size is set by `tensorrt.max_batch_size`; use that instead" in str(info.value)


@pytest.mark.parametrize(("mode", "backend", "options"), [
    ("default", None, {"mode": "default", "backend": "inductor"}),
    ("max-autotune", "inductor", {"mode": "max-autotune", "backend": "inductor"}),
    ("reduce-overhead", "cudagraphs", {"mode": None, "backend": "cudagraphs"}),
])
def test_compile_options_pass_the_mode_to_inductor_only(mode, backend, options):
    assert TransformersConfig(torch_compile=mode, torch_compile_backend=backend).compile_options() == options


def test_advisories_for_settings_without_effect():
    assert TransformersConfig().advisories() == []
    beams = TransformersConfig(length_penalty=1.2, early_stopping=True)
    assert beams.advisories() == ["transformers.length_penalty has no effect with num_beams: 1",
                                  "transformers.early_stopping has no effect with num_beams: 1"]
    assert TransformersConfig(num_beams=4, length_penalty=1.2).advisories() == []
    mode = TransformersConfig(torch_compile="max-autotune", torch_compile_backend="eager")
    assert mode.advisories() == ["transformers.torch_compile 'max-autotune' is an inductor mode: with backend 'eager' "
                                 "it is not passed (the backend takes no mode)"]
    assert TransformersConfig(torch_compile="default", torch_compile_backend="eager").advisories() == []


def test_bitsandbytes_keywords_only_when_enabled():
    assert TransformersQuantization().bnb_kwargs() == {}
    q = TransformersQuantization(load_in_4bit=True, bnb_4bit_quant_type="nf4", extra={"bnb_4bit_quant_storage": "uint8"})
    assert q.bnb_kwargs() == {"load_in_4bit": True, "load_in_8bit": False, "bnb_4bit_quant_type": "nf4",
                              "bnb_4bit_quant_storage": "uint8"}
