"""A continuous-batching engine in miniature for the fake ``vllm``: ``add_request`` / ``step`` /
``has_unfinished_requests`` like vLLM's ``LLMEngine``. Each step takes ``STEP_S`` of real time;
a request scheduled in a step gets its first token at the end of that step (its prefill), then one
token per step; at most ``max_num_seqs`` run at once. Requests are stamped on ``time.monotonic``."""

from __future__ import annotations

import time
from typing import Any

from .v1.metrics.stats import RequestStateStats

STEP_S = 0.002
#: every add_request, in order: (request_id, monotonic time)
ADDED: list[tuple[str, float]] = []


class FakeEngine:
    def __init__(self, max_num_seqs: int, make_output: Any) -> None:
        self.max_num_seqs = max_num_seqs
        self.make_output = make_output
        self.waiting: list[dict[str, Any]] = []
        self.running: list[dict[str, Any]] = []

    def add_request(self, request_id: str, prompt: Any, params: Any, lora_request: Any = None) -> None:
        now = time.monotonic()
        ADDED.append((request_id, now))
        self.waiting.append({"id": request_id, "prompt": prompt, "params": params, "tokens": 0,
                             "stats": RequestStateStats(arrival_time=time.time(), queued_ts=now)})

    def has_unfinished_requests(self) -> bool:
        return bool(self.waiting or self.running)

    def step(self) -> list[Any]:
        began = time.monotonic()
        while self.waiting and len(self.running) < self.max_num_seqs:
            req = self.waiting.pop(0)
            req["stats"].scheduled_ts = began
            self.running.append(req)
        time.sleep(STEP_S)  # the step's "forward pass"
        now = time.monotonic()
        finished = []
        for req in self.running:
            req["tokens"] += 1
            st = req["stats"]
            if req["tokens"] == 1:
                st.first_token_ts = now
                st.first_token_latency = now - st.queued_ts
            st.last_token_ts = now
            st.num_generation_tokens = req["tokens"]
            if req["tokens"] >= req["params"].max_tokens:
                finished.append(req)
        self.running = [r for r in self.running if r not in finished]
        outputs = []
        for r in finished:
            out = self.make_output(r["prompt"], r["params"], r["stats"])
            out.request_id = r["id"]
            outputs.append(out)
        return outputs
