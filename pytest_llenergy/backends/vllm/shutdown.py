"""Closing a vLLM engine within seconds, whatever its engine core does.

vLLM runs its engine core in a child process (``VLLM::EngineCore``). Its own ``shutdown()`` normally
returns in ~3 s on the H200 (docs/validation/h200-vllm.md), but a bare ``LLM`` left to the
interpreter's exit was seen to hang until SIGTERM. Closing must never hang a session: the
shutdown runs under a deadline, and engine-core children still alive after it are terminated,
then killed. And the engine object's repr never calls into the engine core (:func:`quiet_repr`).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

#: seconds the engine's own shutdown may take before its processes are terminated
SHUTDOWN_TIMEOUT_S = float(os.environ.get("LEM_VLLM_SHUTDOWN_TIMEOUT_S", "15"))
#: process names / command lines that mark vLLM's engine processes
ENGINE_MARKERS = ("EngineCore", "VLLM::", "vllm.v1.engine")


def call_with_deadline(call: Callable[[], object], timeout_s: float) -> bool:
    """Run ``call`` in a daemon thread; True when it returned (or raised) within ``timeout_s``."""
    done = threading.Event()

    def target() -> None:
        try:
            call()
        except Exception:  # noqa: BLE001 - closing must not raise
            pass
        finally:
            done.set()

    threading.Thread(target=target, name="lem-vllm-shutdown", daemon=True).start()
    return done.wait(timeout_s)


def engine_children() -> list[object]:
    """This process's live children that are vLLM engine processes (psutil.Process objects)."""
    import psutil

    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            text = " ".join([child.name(), *child.cmdline()])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if any(marker in text for marker in ENGINE_MARKERS):
            found.append(child)
    return found


def stop_engine_processes(grace_s: float = 3.0) -> int:
    """Terminate, then kill, leftover engine processes; how many there were."""
    import psutil

    children = engine_children()
    for child in children:
        try:
            child.terminate()  # type: ignore[attr-defined]
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(children, timeout=grace_s)
    for child in alive:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    return len(children)


def reopen_log_streams(name: str = "vllm") -> int:
    """Point ``name``'s stream handlers whose stream is closed at the process's real stderr; how many there were.

    vLLM's log handler keeps the ``sys.stdout`` of the moment vllm was imported: inside a test, pytest's
    capture file, closed by the time a Ctrl-C'd session closes its engines. Each shutdown log line then
    printed a 15-line "--- Logging error ---" traceback instead of the line. (``sys.stderr`` may be
    pytest's capture too, closed before the interpreter's exit runs vLLM's finalizers: the real one.)
    """
    real = sys.__stderr__
    if real is None or real.closed:
        return 0
    reopened = 0
    for handler in logging.getLogger(name).handlers:
        stream = getattr(handler, "stream", None)
        if isinstance(handler, logging.StreamHandler) and getattr(stream, "closed", False):
            with handler.lock or threading.Lock():  # not setStream: it flushes the closed stream (ValueError)
                handler.stream = real
            reopened += 1
    return reopened


def shutdown_engine(shutdown: Callable[[], object] | None, timeout_s: float | None = None) -> str:
    """Shut the engine core down within ``timeout_s`` (default SHUTDOWN_TIMEOUT_S); what happened, in a few words."""
    try:
        reopen_log_streams()
    except Exception:  # noqa: BLE001 - tidy logs must never stop the close
        pass
    if timeout_s is None:
        timeout_s = SHUTDOWN_TIMEOUT_S
    if shutdown is not None and call_with_deadline(shutdown, timeout_s):
        return "shutdown"
    stopped = stop_engine_processes()
    if shutdown is None:
        return f"no shutdown(); stopped {stopped} engine process(es)"
    return f"shutdown() took over {timeout_s:g} s; stopped {stopped} engine process(es)"


_QUIET: dict[type, type] = {}


def _quiet_repr(self: object) -> str:
    cls = type(self).__mro__[1]
    return f"<{cls.__module__}.{cls.__qualname__} object at {id(self):#x}>"


def quiet_repr(llm: Any) -> Any:
    """Give ``llm`` (a `vllm.LLM`) a repr that never calls into the engine core; returns it.

    vLLM's ``LLM.__repr__`` asks the engine core for a model inspection (``collective_rpc``) and
    waits for the answer without a deadline. pytest formats the traceback of a Ctrl-C (and of any
    failure) with the repr of every frame's arguments, vLLM's own ``generate(self, ...)`` among
    them: once SIGINT had stopped the engine core, an interrupted session hung there for good.
    """
    cls = type(llm)
    if cls in _QUIET.values():
        return llm
    quiet = _QUIET.get(cls)
    if quiet is None:
        quiet = _QUIET[cls] = type(cls.__name__, (cls,), {"__repr__": _quiet_repr, "__module__": cls.__module__,
                                                          "__qualname__": cls.__qualname__})
    try:
        llm.__class__ = quiet
    except TypeError:  # a class whose instances cannot change class: leave it as it is
        pass
    return llm
