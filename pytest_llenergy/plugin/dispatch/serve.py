"""Inside a persistent container: the worker's test loop (``--lem-dispatch-serve``).

The host starts ``pytest <the service's node ids> --lem-dispatch-serve ...`` once per container
through ``docker exec -i`` and sends it one item at a time (protocol: ``dispatch/worker.py``). Items
run through pytest's own ``runtest_protocol`` in this one session, so the backend session cached in
``LemSession.backends`` stays loaded between items of the same model: ``load.cold`` is false after the first.
"""

from __future__ import annotations

import json
from typing import Any, BinaryIO

import pytest

from pytest_llenergy.dispatch.worker import send
from pytest_llenergy.plugin.dispatch.reports import ContainerSide


class ServeLoop:
    """Replaces pytest's run-everything loop with: wait for a node id, run it, report, repeat."""

    def __init__(self, side: ContainerSide, streams: tuple[BinaryIO, BinaryIO]) -> None:
        self.side = side
        self.inp, self.out = streams

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        items = {item.nodeid: item for item in session.items}
        send(self.out, {"ready": True, "collected": len(items), "collect_errors": self.side.collect_errors})
        for raw in self.inp:
            try:
                request: dict[str, Any] = json.loads(raw)
            except ValueError:
                continue
            nodeid = str(request.get("nodeid"))
            item = items.get(nodeid)
            self.side.begin(request.get("report"), request.get("gap"))
            if item is not None:
                nextitem = items.get(str(request.get("next")))
                item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
            failed = self.side.finish(collected=1 if item is not None else 0)
            send(self.out, {"done": nodeid, "failed": failed})
            if session.shouldstop or session.shouldfail:
                break
        return True
