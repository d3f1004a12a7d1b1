"""``validate_h200_vllm.py --part shutdown``: vLLM's engine core closes within seconds on eviction and Ctrl-C.

One pytest process runs a three-item campaign through the plugin, one cycle, ``reuse.max_resident: 1``:

1. model A, a short workload (its engine starts);
2. model B, a short workload: loading it **evicts A** (the eviction record in B's result says how long
   the close took and how it ended); A's engine-core processes must be gone when B measures;
3. model B again (same engine, resident), a long workload: when its measured window has started and
   the engine is busy, the process group gets **SIGINT** (what Ctrl-C in a terminal sends).

The test (written next to the campaign) drops a marker file as each measured window starts; this
script waits for those events (no fixed sleeps) and snapshots the pytest process's descendants and
the GPU's memory (NVML) at each. Checks: the eviction closed within the limit, no engine process of
A left, A's GPU memory released; after SIGINT pytest exits within the limit, no engine process of
the run left, GPU memory back to what it was before the run, and the results of items 1 and 2
(measured before the interrupt) kept. On the CPU build GPU memory is "not applicable".
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LIMIT_S = 20.0  # eviction close and exit after SIGINT, seconds
HANG_S = 60.0  # after SIGINT, seconds until the exit counts as hung (stacks dumped, then SIGKILL)
GiB = 2**30
ENGINE_MARKERS = ("EngineCore", "VLLM::", "vllm.v1.engine")

CAMPAIGN = """
name: vllm-shutdown
description: "Engine close on eviction (max_resident 1) and on Ctrl-C during a long window."
cycles: 1
order: grouped
seed: 28
defaults:
  backend: vllm
  precision: {precision}
  workload: {{prompts: synthetic, input_tokens: {inp}, output_tokens: {out}, seed: 0}}
  decoder: {{temperature: 0.0}}
  vllm: {{gpu_memory_utilization: {gmu}, max_model_len: {max_len}, enforce_eager: true}}
experiments:
  # named: items run in the order of their ids
  - {{name: shutdown-1-evicted, model: {{name: {a}, weights: random}}, workload: {{num_prompts: {short}, batch_size: {short}{a_seed}}}}}
  - {{name: shutdown-2-evicts, model: {{name: {b}, weights: random}}, workload: {{num_prompts: {short}, batch_size: {short}}}}}
  - {{name: shutdown-3-interrupted, model: {{name: {b}, weights: random}},
     workload: {{num_prompts: {long}, batch_size: {long_batch}, output_tokens: {long_out}}}}}
measurement:
  energy_source: {source}
  baseline: {{enabled: false}}
  warmup: {{mode: fixed, iterations: 1, max_time_s: 30, probe_tokens: 2}}
gaps: {{between_experiments: 0, between_cycles: 0}}
reuse: {{max_resident: 1}}
"""

# long_batch: the warmup runs the first batch once at full length, so item 3's first batch must be a small
# part of its window (on the H200 a 4,096-prompt batch made that warmup the whole 4.2 M-token workload,
# and the window had not started when the check's budget ran out)
GPU = dict(precision="bfloat16", inp=64, out=32, gmu=0.2, max_len=2048, a="qwen2.5-0.5b", b="llama-3.2-1b",
           a_seed="", short=64, long=4096, long_batch=256, long_out=1024, source="nvml")
# the CPU build's attention needs head size >= 32: one tiny model, two engines by their weights' seed
CPU = dict(precision="float32", inp=16, out=8, gmu=0.2, max_len=512, a="tiny-llama-hd32", b="tiny-llama-hd32",
           a_seed=", seed: 1", short=4, long=256, long_batch=256, long_out=256, source="estimate")

TEST = '''"""The campaign's test, dropping a marker file as each measured window starts (for the shutdown check)."""
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
                                    "error": error, "engine_pids_alive_after": left}) + "\\n")


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
'''


# --- observing -----------------------------------------------------------------------------------------
def descendants(pid: int) -> list[dict[str, Any]]:
    """The live descendants of ``pid``: pid, name, command line, whether it is a vLLM engine process."""
    import psutil

    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        try:
            text = " ".join([child.name(), *child.cmdline()])
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        found.append({"pid": child.pid, "name": child.name(), "cmdline": text[:200],
                      "engine": any(m in text for m in ENGINE_MARKERS)})
    return found


def alive(pids: list[int]) -> list[int]:
    """Those of ``pids`` still running (zombies count as gone: they hold no memory)."""
    import psutil

    left = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                left.append(pid)
        except psutil.NoSuchProcess:
            continue
    return left


def engine_processes_anywhere(since: float) -> list[dict[str, Any]]:
    """Every vLLM engine process on the machine started after ``since`` (orphans included)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "name", "cmdline", "create_time", "status"]):
        info = proc.info
        text = " ".join([info.get("name") or "", *(info.get("cmdline") or [])])
        if (info.get("create_time") or 0) >= since and info.get("status") != psutil.STATUS_ZOMBIE \
                and any(m in text for m in ENGINE_MARKERS):
            found.append({"pid": info["pid"], "cmdline": text[:200]})
    return found


class Gpu:
    """NVML figures of GPU 0; ``available`` False on a machine without one (the CPU build)."""

    def __init__(self) -> None:
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nvml, self.handle = pynvml, pynvml.nvmlDeviceGetHandleByIndex(0)
            self.available = True
        except Exception:  # noqa: BLE001 - no NVML, no GPU: memory checks are not applicable
            self.available = False

    def used(self) -> int | None:
        return int(self.nvml.nvmlDeviceGetMemoryInfo(self.handle).used) if self.available else None

    def busy(self) -> bool | None:
        return self.nvml.nvmlDeviceGetUtilizationRates(self.handle).gpu > 0 if self.available else None

    def processes(self) -> dict[int, int] | None:
        """pid -> bytes of the processes holding GPU memory (as NVML sees them)."""
        if not self.available:
            return None
        try:
            procs = self.nvml.nvmlDeviceGetComputeRunningProcesses(self.handle)
        except Exception:  # noqa: BLE001
            return None
        return {int(p.pid): int(p.usedGpuMemory or 0) for p in procs}


def snapshot(pid: int, gpu: Gpu, started: float) -> dict[str, Any]:
    procs = descendants(pid)
    return {"t_s": time.perf_counter() - started, "processes": procs,
            "engine_pids": [p["pid"] for p in procs if p["engine"]],
            "gpu_used_bytes": gpu.used(), "gpu_processes": gpu.processes()}


def wait_for(condition: Any, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> bool:
    """Poll ``condition`` every 50 ms until true, the timeout, or ``proc`` ending; whether it came true."""
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if condition():
            return True
        if proc is not None and proc.poll() is not None:
            return bool(condition())
        time.sleep(0.05)
    return bool(condition())


# --- running -------------------------------------------------------------------------------------------
def write_suite(out: Path, cpu: bool) -> tuple[Path, Path, Path]:
    suite, markers = out / "suite", out / "markers"
    suite.mkdir(parents=True, exist_ok=True)
    markers.mkdir(parents=True, exist_ok=True)
    for old in [*markers.glob("*"), out / "closes.jsonl", out / "stacks.txt"]:
        old.unlink(missing_ok=True)
    (suite / "test_shutdown_inference.py").write_text(TEST)
    campaign = out / "campaign.yaml"
    campaign.write_text(CAMPAIGN.format(**(CPU if cpu else GPU)))
    return suite, markers, campaign


def command(suite: Path, campaign: Path, results: Path) -> list[str]:
    from importlib.metadata import entry_points

    cmd = [sys.executable, "-m", "pytest", str(suite), "--lem-campaign", str(campaign), "--lem-results-dir", str(results),
           "--lem-no-plots", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "--rootdir", str(suite)]
    if not any(ep.name == "llenergy" for ep in entry_points(group="pytest11")):
        cmd[3:3] = ["-p", "pytest_llenergy.plugin"]
    return cmd


def run(out: Path, cpu: bool, budget_s: float) -> dict[str, Any]:
    """Run the campaign, evict, interrupt; every figure and check as one dict."""
    out.mkdir(parents=True, exist_ok=True)
    suite, markers, campaign = write_suite(out, cpu)
    results = out / "results"
    shutil.rmtree(results, ignore_errors=True)  # this run's results only
    gpu = Gpu()
    env = {**os.environ, "LEM_SHUTDOWN_MARKERS": str(markers), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    if cpu:  # the engine core in its own process, as on a GPU (the CPU CI runs it in-process)
        env.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "1")
    record: dict[str, Any] = {"cpu": cpu, "limit_s": LIMIT_S, "gpu_used_before_bytes": gpu.used(),
                              "engine_processes_before": engine_processes_anywhere(0.0)}
    wall0, epoch0 = time.perf_counter(), time.time()
    log = open(out / "pytest.log", "wb")  # noqa: SIM115 - open for the child's whole life
    proc = subprocess.Popen(command(suite, campaign, results), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    record["pytest_pid"], record["stacks_file"] = proc.pid, str(out / "stacks.txt")
    snaps: dict[int, dict[str, Any]] = {}
    try:
        for index in range(3):
            marker = markers / f"{index:02d}.json"
            left = budget_s - (time.perf_counter() - wall0)
            if not wait_for(marker.exists, max(left, 0), proc):
                record["error"] = (f"window {index + 1} never started (pytest rc {proc.poll()}, "
                                   f"{time.perf_counter() - wall0:.0f} s); see pytest.log")
                break
            snaps[index] = {**snapshot(proc.pid, gpu, wall0), "marker": json.loads(marker.read_text())}
        record["snapshots"] = snaps
        if 2 in snaps:
            interrupt(proc, gpu, record, wall0, epoch0)
    finally:
        if proc.poll() is None:  # never leave it running
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    record["wall_s"] = time.perf_counter() - wall0
    closes = out / "closes.jsonl"
    record["closes"] = [json.loads(line) for line in closes.read_text().splitlines()] if closes.exists() else []
    for entry in record["closes"]:
        entry["at_s"] = entry.pop("at") - epoch0
    record["results"] = kept_results(results)
    record["eviction"] = eviction(record, snaps)
    record["checks"] = checks(record, gpu.available)
    return record


def interrupt(proc: subprocess.Popen[bytes], gpu: Gpu, record: dict[str, Any], wall0: float, epoch0: float) -> None:
    """Ctrl-C once the long window is busy; time the exit, look for leftovers and the memory."""
    engines = record["snapshots"][2]["engine_pids"]
    if gpu.available:
        record["busy_seen"] = wait_for(lambda: bool(gpu.busy()), 30, proc)
    else:  # the engine core's CPU time grows while it generates
        record["busy_seen"] = wait_for(lambda: cpu_busy(engines or [proc.pid]), 30, proc)
    record["running_at_sigint"] = proc.poll() is None
    sent = time.perf_counter()
    os.killpg(proc.pid, signal.SIGINT)  # the whole foreground group, as a terminal's Ctrl-C
    try:
        proc.wait(timeout=HANG_S)
    except subprocess.TimeoutExpired:
        record["hung"] = True
        stacks = Path(record["stacks_file"])
        os.kill(proc.pid, signal.SIGUSR1)  # where it hangs: every thread's stack into stacks.txt
        wait_for(lambda: stacks.exists() and stacks.stat().st_size > 0, 10)
        record["hang_stacks_tail"] = stacks.read_text()[-6000:] if stacks.exists() else None
    exit_s = time.perf_counter() - sent
    record.update(sigint_at_s=sent - wall0, exit_s=exit_s, returncode=proc.poll())
    all_engines = sorted({pid for snap in record["snapshots"].values() for pid in snap["engine_pids"]})
    record["engine_pids_seen"] = all_engines
    record["engine_pids_left"] = alive(all_engines)
    record["engine_processes_left_anywhere"] = engine_processes_anywhere(epoch0)
    others = [p["pid"] for p in record["snapshots"][2]["processes"]]
    wait_for(lambda: not alive(others), 5)  # e.g. multiprocessing's resource tracker follows its parent out
    record["descendants_left"] = [p for p in record["snapshots"][2]["processes"] if alive([p["pid"]])]
    if gpu.available:
        before = record["gpu_used_before_bytes"]
        wait_for(lambda: (gpu.used() or 0) <= before + GiB, 15)
        record["gpu_used_after_bytes"] = gpu.used()
        record["gpu_release_s"] = time.perf_counter() - sent


def cpu_busy(pids: list[int]) -> bool:
    import psutil

    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    first = getattr(cpu_busy, "first", None)
    cpu_busy.first = first if first is not None else total  # type: ignore[attr-defined]
    return first is not None and total - first > 0.2


def kept_results(results: Path) -> dict[str, Any]:
    """The result files written before the interrupt, and the manifest's view of each item."""
    files = sorted(results.glob("*/*/experiments/*.json"))
    rows = [json.loads(f.read_text()) for f in files]
    manifests = sorted(results.glob("*/*/manifest.json"))
    manifest = json.loads(manifests[-1].read_text()) if manifests else {}
    states = {k: v.get("status") for k, v in manifest.get("entries", {}).items()}
    return {"files": [str(f) for f in files],
            "rows": [{"experiment_id": r.get("experiment_id"), "model": (r.get("model") or {}).get("name")
                      if isinstance(r.get("model"), dict) else r.get("model"), "status": r.get("status"),
                      "output_tokens": r.get("output_tokens"), "energy_j": (r.get("energy") or {}).get("energy_j"),
                      "load": r.get("load")} for r in rows],
            "manifest_status": states}


def eviction(record: dict[str, Any], snaps: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """A's close as B's result records it, and A's engine processes and memory as seen from outside."""
    out: dict[str, Any] = {}
    for row in record["results"]["rows"]:
        evicted = (row.get("load") or {}).get("evicted") or []
        if evicted:
            out["record"] = evicted[0]
    if 0 in snaps and 1 in snaps:
        a, b = snaps[0]["engine_pids"], snaps[1]["engine_pids"]
        out["engine_pids_a"], out["engine_pids_b"] = a, b
        out["engine_pids_a_left_at_b"] = [p for p in a if p in set(b) or p in {q["pid"] for q in snaps[1]["processes"]}]
        used_a, used_b = snaps[0]["gpu_used_bytes"], snaps[1]["gpu_used_bytes"]
        if used_a is not None and used_b is not None:
            out["gpu_used_a_bytes"], out["gpu_used_b_bytes"] = used_a, used_b
        procs_b = snaps[1]["gpu_processes"]
        if procs_b is not None:
            out["gpu_held_by_a_at_b_bytes"] = sum(v for k, v in procs_b.items() if k in set(a))
    return out


def checks(record: dict[str, Any], on_gpu: bool) -> dict[str, Any]:
    """name -> True / False / "n/a (why)"."""
    ev, res = record.get("eviction", {}), record.get("results", {})
    close = (ev.get("record") or {}).get("close_s")
    out: dict[str, Any] = {
        "all three windows started": not record.get("error"),
        "eviction recorded": "record" in ev,
        f"eviction closed within {LIMIT_S:g} s": close is not None and close <= LIMIT_S,
        "eviction: engine core of A had a process of its own": bool(ev.get("engine_pids_a")) or
        "n/a (engine core in-process: VLLM_ENABLE_V1_MULTIPROCESSING=0)",
        "eviction: no engine process of A left": "engine_pids_a_left_at_b" in ev and not ev["engine_pids_a_left_at_b"],
        "Ctrl-C: pytest still running when interrupted": bool(record.get("running_at_sigint")),
        f"Ctrl-C: exit within {LIMIT_S:g} s": record.get("exit_s") is not None and not record.get("hung")
        and record["exit_s"] <= LIMIT_S,
        "Ctrl-C: exit code 2 (interrupted)": record.get("returncode") == 2,
        "Ctrl-C: no engine process left": "engine_pids_left" in record and not record["engine_pids_left"]
        and not record.get("engine_processes_left_anywhere") and not record.get("descendants_left"),
        "Ctrl-C: the plugin's session-end close ran and stopped the engine": any(
            c["at_s"] >= record.get("sigint_at_s", float("inf")) - 1 and c.get("error") is None and not c["engine_pids_alive_after"]
            for c in record.get("closes", [])),
        "Ctrl-C: results measured before the interrupt kept": sum(r["status"] == "passed" for r in res.get("rows", [])) >= 2,
    }
    na = "n/a on the CPU build (no GPU)"
    if on_gpu:
        footprint = (ev.get("record") or {}).get("footprint_bytes") or 0
        used_a, used_b = ev.get("gpu_used_a_bytes"), ev.get("gpu_used_b_bytes")
        held = ev.get("gpu_held_by_a_at_b_bytes")
        out["eviction: A's GPU memory released"] = (
            (held == 0 if held is not None else True) and used_a is not None and used_b is not None
            and used_b < used_a + 0.5 * footprint)
        after, before = record.get("gpu_used_after_bytes"), record.get("gpu_used_before_bytes")
        out["Ctrl-C: GPU memory back to the level before the run (+1 GiB)"] = (
            after is not None and before is not None and after <= before + GiB)
    else:
        out["eviction: A's GPU memory released"] = na
        out["Ctrl-C: GPU memory back to the level before the run (+1 GiB)"] = na
    return out


def failed(record: dict[str, Any]) -> list[str]:
    return [name for name, ok in record["checks"].items() if ok is False]


def lines(record: dict[str, Any]) -> list[str]:
    """The markdown summary."""
    ev, rec = record.get("eviction", {}), record.get("eviction", {}).get("record") or {}
    gib = lambda b: "-" if b is None else f"{b / GiB:.2f} GiB"  # noqa: E731
    out = [f"# vLLM engine shutdown ({'CPU build' if record['cpu'] else 'GPU'})", "",
           f"wall {record['wall_s']:.1f} s, pytest pid {record.get('pytest_pid')}"
           + (f"; ERROR: {record['error']}" if record.get("error") else ""), "",
           "| figure | value |", "|---|---|",
           f"| eviction: close (B's load record) | {rec.get('close_s', float('nan')):.2f} s, shutdown: {rec.get('shutdown')} |",
           f"| eviction: freed in-process (CUDA mem_get_info) | {gib(rec.get('freed_bytes'))} of {gib(rec.get('footprint_bytes'))} |",
           f"| eviction: engine pids A / B / A left at B's window | {ev.get('engine_pids_a')} / {ev.get('engine_pids_b')} / "
           f"{ev.get('engine_pids_a_left_at_b')} |",
           f"| eviction: GPU used at A's / B's window | {gib(ev.get('gpu_used_a_bytes'))} / {gib(ev.get('gpu_used_b_bytes'))} |",
           f"| Ctrl-C: sent at / exit after | {record.get('sigint_at_s', float('nan')):.1f} s / "
           f"{record.get('exit_s', float('nan')):.2f} s (rc {record.get('returncode')}, busy seen {record.get('busy_seen')}) |",
           f"| Ctrl-C: engine pids seen / left / anywhere | {record.get('engine_pids_seen')} / {record.get('engine_pids_left')} / "
           f"{[p['pid'] for p in record.get('engine_processes_left_anywhere', [])]} |",
           f"| Ctrl-C: GPU used before run / after exit | {gib(record.get('gpu_used_before_bytes'))} / "
           f"{gib(record.get('gpu_used_after_bytes'))} |",
           *[f"| engine close at {c['at_s']:.1f} s | {c['close_s']:.2f} s, {c['outcome']}, error {c.get('error')}, engine pids alive after: "
             f"{c['engine_pids_alive_after']} |" for c in record.get("closes", [])],
           f"| results kept | {[(r['experiment_id'], r['status']) for r in record['results']['rows']]} |",
           f"| manifest | {record['results']['manifest_status']} |", "", "checks:"]
    out += [f"- {'PASS' if ok is True else 'FAIL' if ok is False else ok}: {name}" for name, ok in record["checks"].items()]
    return out
