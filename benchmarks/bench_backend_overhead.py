"""Overhead of the transformers backend's measured loop against a bare hand-written generate loop.

Both run the same random-weight model, the same padded inputs and the same generate keywords,
alternating round by round; the backend side is timed around the whole ``session.run`` call
(token counting and warning capture included). Target: ratio >= 0.98 (at most 2 % overhead).

Usage: python benchmarks/bench_backend_overhead.py [--model tiny-llama] [--rounds 15] [--batch-size 4]
       [--num-prompts 16] [--input-tokens 32] [--output-tokens 32] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-llama", help="shipped architecture (random weights)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--num-prompts", type=int, default=16)
    parser.add_argument("--input-tokens", type=int, default=32)
    parser.add_argument("--output-tokens", type=int, default=32)
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads on CPU (0: leave as is)")
    args = parser.parse_args(argv)

    import torch

    from pytest_llenergy.backends.transformers.backend import TransformersBackend
    from pytest_llenergy.config.experiment import ExperimentConfig

    if args.threads and not torch.cuda.is_available():
        torch.set_num_threads(args.threads)
    experiment = ExperimentConfig(
        model={"name": args.model, "weights": "random"},
        precision=args.precision,
        workload={
            "num_prompts": args.num_prompts,
            "batch_size": args.batch_size,
            "input_tokens": args.input_tokens,
            "output_tokens": args.output_tokens,
        },
    )
    session = TransformersBackend().load(experiment)
    workload = session.prepare(experiment.workload)
    model, inputs = session.model, workload.engine_inputs
    kwargs = {**session._base_kwargs, "max_new_tokens": args.output_tokens, "min_new_tokens": args.output_tokens}
    sync = torch.cuda.synchronize if session.device.type == "cuda" else (lambda: None)

    def bare() -> float:
        torch.manual_seed(experiment.workload.seed)
        sync()
        start = time.perf_counter()
        for ids, mask in inputs:
            model.generate(input_ids=ids, attention_mask=mask, **kwargs)
        sync()
        return time.perf_counter() - start

    def backend() -> float:
        start = time.perf_counter()
        stats = session.run(workload)
        elapsed = time.perf_counter() - start
        assert stats.output_tokens == args.num_prompts * args.output_tokens, stats.output_tokens
        return elapsed

    bare(), backend()  # warm both paths
    bare_times, backend_times = [], []
    for i in range(args.rounds):
        pair = (bare, backend) if i % 2 == 0 else (backend, bare)
        for fn in pair:
            (bare_times if fn is bare else backend_times).append(fn())
    tokens = args.num_prompts * args.output_tokens
    bare_tps = tokens / statistics.median(bare_times)
    backend_tps = tokens / statistics.median(backend_times)
    ratio = backend_tps / bare_tps
    paired = statistics.median(b / k for b, k in zip(bare_times, backend_times))
    print(f"model {args.model} ({session.engine_info['num_parameters']:,} parameters) on {session.device}, "
          f"{args.num_prompts} prompts x {args.input_tokens}+{args.output_tokens} tokens, batch {args.batch_size}, "
          f"{args.rounds} rounds each (alternating)")
    print(f"bare generate loop : {bare_tps:10.1f} output tokens/s (median {statistics.median(bare_times) * 1e3:.1f} ms)")
    print(f"backend.run        : {backend_tps:10.1f} output tokens/s (median {statistics.median(backend_times) * 1e3:.1f} ms)")
    print(f"ratio backend/bare : {ratio:.4f}  (overhead {100 * (1 - ratio):+.2f} %, target <= 2 %)")
    print(f"median paired ratio: {paired:.4f}  (round by round, robust to drift on a busy machine)")

    # The wrapper's own cost, free of machine noise: both loops around a generate that returns at once.
    outputs = [model.generate(input_ids=ids, attention_mask=mask, **kwargs) for ids, mask in inputs]
    replies = iter(())

    def instant(**_):
        return next(replies)

    real_generate = model.generate
    model.generate = instant
    try:
        loops = 200
        replies = iter(outputs * loops)
        start = time.perf_counter()
        for _ in range(loops):
            for ids, mask in inputs:
                instant(input_ids=ids, attention_mask=mask, **kwargs)
        bare_cost = (time.perf_counter() - start) / loops
        replies = iter(outputs * loops)
        start = time.perf_counter()
        for _ in range(loops):
            session.run(workload)
        run_cost = (time.perf_counter() - start) / loops
    finally:
        model.generate = real_generate
    extra = run_cost - bare_cost
    print(f"wrapper cost       : {extra * 1e6:.0f} us per run ({extra * 1e6 / len(inputs):.0f} us per batch) = "
          f"{100 * extra / statistics.median(bare_times):.3f} % of this workload's bare time")
    session.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
