"""Per-iteration cost of a Loop and per-item cost of a Batch, in process (no server, no store).

Cases, each a workflow Start → composite → End whose body is one Output (13) node with constant text (the
cheapest executable node; the body collects its output, so every iteration does real work):

- `loop`: a count Loop (21) of N iterations;
- `batch`: a Batch (28) over a list of N items at concurrency 10;
- `chain`: for comparison, the same body node N times in a plain chain Start → N nodes → End.

The figure is **µs per iteration = (one run's time − an empty run's time) / N**: the empty run (Start → End)
takes out the fixed cost of a run. Each is the median of several repetitions, all cases round-robin inside each
repetition, so drift on this noisy machine hits every case alike; the ratio to `chain` (µs per node of a plain
chain) is the figure to compare across machines. Runs go with a `list.append` sink, as a server collects events.

Run by hand:  .venv/bin/python bench/composite_overhead.py [--n 1000] [--repeat 7] [--budget 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for `tests`

from tests.canvases import canvas, edge, end_return, literal, output, ref, start
from tests.nodes.test_composites import BATCH, LOOP, around, composite

from knotflow.engine.compiler import Plan, compile_canvas
from knotflow.engine.runner import Execution
from knotflow.nodes import NODE_TYPES

TARGET_US_PER_ITERATION = 30.0
BODY = "20001"


def loop_canvas(n: int) -> dict[str, Any]:
    loop = composite(LOOP, "21", {"loopType": "count", "loopCount": literal(n, "integer")}, [output(BODY, "ok")],
                     [BODY], [("texts", ref(BODY, "output", "list"))], "loop")
    return around(loop, texts=ref(LOOP, "texts", "list"))


def batch_canvas(n: int) -> dict[str, Any]:
    items = ref("100001", "items", "list")
    items["schema"] = {"type": "integer"}
    batch = composite(BATCH, "28", {
        "batchSize": literal(n, "integer"), "concurrentSize": literal(10, "integer"),
        "inputParameters": [{"name": "items", "input": items}]}, [output(BODY, "ok")], [BODY],
        [("texts", ref(BODY, "output", "list"))], "batch")
    return around(batch, {"name": "items", "type": "list", "schema": {"type": "integer"}},
                  texts=ref(BATCH, "texts", "list"))


def chain_canvas(n: int) -> dict[str, Any]:
    ids = [str(300000 + i) for i in range(n)]
    nodes = [start(), *(output(node_id, "ok") for node_id in ids), end_return(out=literal("done"))]
    path = ["100001", *ids, "900001"]
    return canvas(nodes, [edge(a, b) for a, b in itertools.pairwise(path)])


def empty_canvas() -> dict[str, Any]:
    return canvas([start(), end_return(out=literal("done"))], [edge("100001", "900001")])


async def seconds_per_run(plan: Plan, parameters: dict[str, Any], budget: float) -> float:
    """Mean seconds of one run, over as many runs as fit in `budget` seconds (at least 3)."""
    runs, started = 0, time.perf_counter()
    while runs < 3 or time.perf_counter() - started < budget:
        events: list[Any] = []
        await Execution(plan, sink=events.append).run(plan.entry.prepare(parameters))
        runs += 1
    return (time.perf_counter() - started) / runs


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="iterations / items / chain nodes")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--budget", type=float, default=0.5, help="seconds per case per repetition")
    args = parser.parse_args()
    n = args.n
    plans = {"loop": compile_canvas(loop_canvas(n), NODE_TYPES), "batch": compile_canvas(batch_canvas(n), NODE_TYPES),
             "chain": compile_canvas(chain_canvas(n), NODE_TYPES), "empty": compile_canvas(empty_canvas(), NODE_TYPES)}
    parameters = {"items": list(range(n))}
    samples: dict[str, list[float]] = {name: [] for name in plans}
    gc.collect()
    for repetition in range(args.repeat):
        for name, plan in plans.items():
            samples[name].append(await seconds_per_run(plan, parameters, args.budget))
        print(f"  repetition {repetition + 1}/{args.repeat} done", file=sys.stderr)
    empty = statistics.median(samples["empty"])
    per = {name: [(s - empty) / n * 1e6 for s in values] for name, values in samples.items() if name != "empty"}
    chain = statistics.median(per["chain"])
    print(f"N = {n}; an empty run (Start → End) takes {empty * 1e6:.1f} µs")
    print(f"{'case':8} {'µs/iteration':>13} {'min':>8} {'max':>8} {'× chain node':>13}  verdict")
    for name, values in per.items():
        median = statistics.median(values)
        verdict = "" if name == "chain" else ("ok" if median <= TARGET_US_PER_ITERATION else "over target")
        print(f"{name:8} {median:13.2f} {min(values):8.2f} {max(values):8.2f} {median / chain:13.2f}  {verdict}")


if __name__ == "__main__":
    asyncio.run(main())
