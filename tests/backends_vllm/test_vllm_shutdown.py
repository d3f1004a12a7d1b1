"""Closing a vLLM engine never hangs: the shutdown runs under a deadline, leftover engine processes die."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time

import pytest

from pytest_llenergy.backends.vllm import shutdown as vshutdown

from .conftest import experiment

STUBBORN = ("import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(600)")


@pytest.fixture
def engine_process():
    """A child that looks like vLLM's engine core (its command line says so) and ignores SIGTERM."""
    proc = subprocess.Popen([sys.executable, "-c", STUBBORN, "VLLM::EngineCore"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_a_hanging_shutdown_is_cut_and_the_engine_process_killed(engine_process):
    release = threading.Event()
    outcome = vshutdown.shutdown_engine(lambda: release.wait(), timeout_s=0.2)
    try:
        assert "took over 0.2 s" in outcome and "stopped 1 engine process" in outcome
        assert engine_process.wait(timeout=30) != 0  # killed (SIGTERM was ignored)
    finally:
        release.set()


def test_a_prompt_shutdown_leaves_other_children_alone(engine_process):
    calls = []
    assert vshutdown.shutdown_engine(lambda: calls.append(1), timeout_s=5) == "shutdown"
    assert calls == [1] and engine_process.poll() is None


def test_only_engine_processes_are_stopped():
    other = subprocess.Popen([sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(600)"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "ready"
        assert vshutdown.stop_engine_processes(grace_s=0.5) == 0
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_session_close_returns_although_the_engine_hangs(fake_vllm, monkeypatch):
    from pytest_llenergy.backends.vllm.backend import VllmBackend

    monkeypatch.setattr(vshutdown, "SHUTDOWN_TIMEOUT_S", 0.2)
    session = VllmBackend().load(experiment())
    release = threading.Event()
    session.llm.llm_engine.engine_core.shutdown = lambda: release.wait()
    started = time.monotonic()
    try:
        session.close()
        assert time.monotonic() - started < 30
        assert session.shutdown_outcome is not None and "took over 0.2 s" in session.shutdown_outcome
        assert session.llm is None
    finally:
        release.set()


def test_the_engine_repr_never_waits_on_a_stopped_engine_core(fake_vllm):
    """pytest formats a Ctrl-C's traceback with the repr of each frame's arguments (vLLM's own
    ``generate(self, ...)``): vLLM's ``LLM.__repr__`` asked the engine core, which SIGINT had stopped,
    and the interrupted session hung there (scripts/validate_h200_vllm.py --part shutdown --cpu)."""
    from _pytest._io.saferepr import saferepr

    from pytest_llenergy.backends.vllm.backend import VllmBackend

    session = VllmBackend().load(experiment())
    release = threading.Event()
    session.llm.llm_engine.collective_rpc = lambda method: release.wait()  # a stopped engine core never answers
    shown: list[str] = []
    worker = threading.Thread(target=lambda: shown.append(saferepr(session.llm, maxsize=240)), daemon=True)
    worker.start()
    worker.join(30)
    release.set()
    try:
        assert shown and "vllm" in shown[0] and "LLM" in shown[0]
        assert isinstance(session.llm, fake_vllm.LLM)
    finally:
        session.close()


def test_shutdown_logs_reach_stderr_after_pytest_closed_the_captured_stream(capfd, tmp_path):
    """vLLM's handler kept the stdout of its import (pytest's capture file, a real file); after a Ctrl-C
    that file is closed, and every shutdown log line became a "--- Logging error ---" traceback. (Its
    first fix swapped the stream with ``setStream``, which flushes the closed file: the ValueError made
    the session-end close fail before the shutdown, seen in validate_h200_vllm.py --part shutdown --cpu.)"""
    logger = logging.getLogger("vllm")
    closed = open(tmp_path / "captured.txt", "w")  # noqa: SIM115 - closed at once, as pytest's capture was
    handler = logging.StreamHandler(closed)
    closed.close()
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        assert vshutdown.shutdown_engine(lambda: logger.info("[shutdown] engine stopped"), timeout_s=5) == "shutdown"
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    err = capfd.readouterr().err
    assert "Logging error" not in err and "[shutdown] engine stopped" in err
