"""GPU routing, ``KEY=VALUE`` files and the secrets file."""

from __future__ import annotations

import pytest

from pytest_llenergy.dispatch import (
    DispatchError,
    ensure_secrets_file,
    parse_visible,
    route_gpus,
)
from pytest_llenergy.dispatch.envfile import parse_env_text


class TestRouting:
    @pytest.mark.parametrize("visible, nvidia, cuda", [
        (None, "all", None),  # unset: every GPU, CUDA_VISIBLE_DEVICES left unset inside
        ("3", "3", "0"),  # an xdist worker pinned to host GPU 3 sees it as cuda:0
        ("2,3", "2,3", "0,1"),
        ("GPU-6f23,GPU-36a0", "GPU-6f23,GPU-36a0", "0,1"),  # UUIDs pass through
        ("", "none", ""),
        ("-1", "none", ""),
    ])
    def test_host_ids_out_renumbered_in(self, visible, nvidia, cuda):
        route = route_gpus(visible)
        assert route.nvidia_visible_devices == nvidia
        assert route.cuda_visible_devices == cuda
        env = route.container_env()
        assert env["NVIDIA_VISIBLE_DEVICES"] == nvidia
        assert env.get("CUDA_VISIBLE_DEVICES") == cuda

    def test_requested_indices_map_through_the_visible_list(self):
        assert route_gpus("4,5,6", [2, 0]).nvidia_visible_devices == "6,4"
        assert route_gpus("4,5,6", [2, 0]).cuda_visible_devices == "0,1"
        assert route_gpus(None, [1]).nvidia_visible_devices == "1"

    def test_errors(self):
        with pytest.raises(DispatchError, match=r"GPU index 2 requested but this process sees 2 GPU\(s\) \(CUDA_VISIBLE_DEVICES=0,1\)"):
            route_gpus("0,1", [2])
        with pytest.raises(DispatchError, match="listed twice"):
            parse_visible("1,1")
        with pytest.raises(DispatchError, match="empty entry"):
            parse_visible("1,,2")

    def test_describe(self):
        assert route_gpus("2").describe() == "host GPU 2 as cuda:0"
        assert route_gpus(None).describe() == "all GPUs"


class TestEnvFile:
    def test_parse(self):
        text = "# pins\nTORCH_VERSION=2.13.0\nexport A = 'b c'\n\nnot a line\n"
        assert parse_env_text(text) == {"TORCH_VERSION": "2.13.0", "A": "b c"}

    def test_secrets_file_is_owner_only_and_never_overwritten(self, tmp_path):
        path = tmp_path / "secrets.env"
        assert ensure_secrets_file(path) is True
        assert path.stat().st_mode & 0o777 == 0o600
        assert parse_env_text(path.read_text()) == {}
        path.write_text("HF_TOKEN=hf_x\n")
        assert ensure_secrets_file(path) is False
        assert path.read_text() == "HF_TOKEN=hf_x\n"
