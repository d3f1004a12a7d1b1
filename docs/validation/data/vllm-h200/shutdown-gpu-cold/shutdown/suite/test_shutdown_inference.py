"""The campaign's test, dropping a marker file as each measured window starts (for the shutdown check)."""
import faulthandler
import json
import os
import signal
import time
from pathlib import Path

from pytest_llenergy.backends.vllm import backend, shutdown

MARKERS = Path(os.environ["LEM_SHUTDOWN_MARKERS"])
# SIGUSR1: every thread's stack into stacks.txt (the check asks for it when the exit hangs)
STACKS = open(MARKERS.parent / "stacks.txt", "w")
faulthandler.register(signal.SIGUSR1, file=STACKS, all_threads=True)
_close = backend.VllmSession.close


def close(self):
    """Every engine close (eviction, session end), timed, with the engine processes still alive after it."""
    started, was_open, error = time.time(), self.llm is not None, None
    try:
        _close(self)
    except BaseException as exc:  # a second interrupt: say so, then let it go on
        error = repr(exc)
        raise
    finally:
        if was_open:
            left = [p.pid for p in shutdown.engine_children()]
            with open(MARKERS.parent / "closes.jsonl", "a") as f:
                f.write(json.dumps({"at": started, "close_s": time.time() - started, "outcome": self.shutdown_outcome,
                                    "error": error, "engine_pids_alive_after": left}) + "\n")


backend.VllmSession.close = close


def test_inference(lem_experiment, lem_session, lem_result, energy):
    workload = lem_session.prepare(lem_experiment.config.workload)
    energy.warmup(session=lem_session, workload=workload)
    markers = MARKERS
    with energy.measure("generate") as window:
        index = len(list(markers.glob("*.json")))
        info = {"index": index, "item": lem_experiment.id, "model": lem_experiment.config.model.name,
                "num_prompts": workload.num_prompts, "pid": os.getpid(), "t": time.time()}
        (markers / f"{index:02d}.tmp").write_text(json.dumps(info))
        (markers / f"{index:02d}.tmp").rename(markers / f"{index:02d}.json")
        stats = lem_session.run(workload)
        window.record(input_tokens=stats.input_tokens, output_tokens=stats.output_tokens, timeline=stats.timeline)
    lem_result.record_generation(stats)
