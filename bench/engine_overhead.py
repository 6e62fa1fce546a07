"""Engine-only per-node overhead on Start → N nodes → End chains, in process (no server, no store).

For each chain length and node mix: compile the canvas once (timed once), then time many
`Execution(plan).run(plan.entry.prepare(...))` and report microseconds per node, i.e. the time of one run
divided by N + 2 (the Start and End nodes count). Each figure is the median of several repetitions; the spread
(min / max of the repetitions) is printed beside it, since this machine is noisy.

Run by hand:  .venv/bin/python bench/engine_overhead.py [--sizes 10,100,1000] [--repeat 7] [--budget 0.3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for `tests.canvases`

from tests.canvases import canvas, edge, end_return, literal, node, output, param, ref, start

from knotflow.engine.compiler import Plan, compile_canvas
from knotflow.engine.events import Event
from knotflow.engine.runner import Execution
from knotflow.nodes import NODE_TYPES

TARGET_US_PER_NODE = 20.0
START_ID, END_ID = "100001", "900001"

Canvas = dict[str, Any]
MiddleNode = Callable[[str], dict[str, Any]]


def _template_output(node_id: str) -> dict[str, Any]:
    """An Output node (13) rendering a template with one variable read from Start."""
    return output(node_id, "Hello, {{name}}! Step " + node_id + ".", name=ref(START_ID, "name"))


def _constant_output(node_id: str) -> dict[str, Any]:
    """An Output node (13) with a constant text and no inputs: the cheapest executable middle node."""
    return output(node_id, "ok")


def _param_output(node_id: str) -> dict[str, Any]:
    """An Output node (13) with four inputs (three from Start, one literal) and a four-variable template."""
    return output(
        node_id,
        "{{name}} / {{count}} / {{flag}} / {{tag}}",
        name=ref(START_ID, "name"),
        count=ref(START_ID, "count", "integer"),
        flag=ref(START_ID, "flag", "boolean"),
        tag=literal("t-" + node_id),
    )


def _json_serialize(node_id: str) -> dict[str, Any]:
    """A JSON serialization node (58) turning Start's `name` into a JSON string (only if the type exists)."""
    return node(
        node_id,
        "58",
        "ToJSON",
        inputs={"inputParameters": [param("input", ref(START_ID, "name"))]},
        outputs=[{"name": "output", "type": "string"}],
    )


MIXES: dict[str, tuple[str, MiddleNode]] = {
    "output-const": ("Output (13), constant text, no inputs (pass-through-like)", _constant_output),
    "output-template": ("Output (13), 1 input ref, template 'Hello, {{name}}! ...'", _template_output),
    "output-4params": ("Output (13), 4 inputs (3 refs + 1 literal), 4-variable template", _param_output),
}
OPTIONAL_MIXES: dict[str, tuple[str, str, MiddleNode]] = {  # name → (type id, description, builder)
    "json-serialize": ("58", "JSON serialization (58), 1 input ref", _json_serialize),
}


def available_mixes() -> dict[str, tuple[str, MiddleNode]]:
    mixes = dict(MIXES)
    types = NODE_TYPES
    for name, (type_id, description, builder) in OPTIONAL_MIXES.items():
        if type_id in types:
            mixes[name] = (description, builder)
    return mixes


def chain(size: int, middle: MiddleNode) -> Canvas:
    """Start "100001" → `size` middle nodes → End "900001", End returning Start's `name`."""
    ids = [str(200000 + i) for i in range(size)]
    nodes = [start(("name", "string"), ("count", "integer"), ("flag", "boolean"))]
    nodes += [middle(node_id) for node_id in ids]
    nodes.append(end_return(output=ref(START_ID, "name")))
    path = [START_ID, *ids, END_ID]
    return canvas(nodes, [edge(a, b) for a, b in itertools.pairwise(path)])


PARAMETERS = {"name": "world", "count": 3, "flag": True}


@dataclass
class Row:
    mix: str
    sink: str
    size: int
    compile_ms: float
    runs: int
    us_per_node: float
    us_per_node_min: float
    us_per_node_max: float


def _collecting_sink() -> tuple[Callable[[Event], None], list[Event]]:
    events: list[Event] = []
    return events.append, events


async def _time_runs(plan: Plan, runs: int, sink: bool) -> float:
    """Seconds for `runs` sequential runs (each with a fresh Execution, prepare included)."""
    entry = plan.entry
    prepare = entry.prepare  # type: ignore[attr-defined]
    started = time.perf_counter()
    for _ in range(runs):
        if sink:
            append, _events = _collecting_sink()
            await Execution(plan, sink=append).run(prepare(PARAMETERS))
        else:
            await Execution(plan).run(prepare(PARAMETERS))
    return time.perf_counter() - started


@dataclass
class Case:
    mix: str
    sink: bool
    size: int
    plan: Plan
    compile_ms: float
    runs: int = 0


async def prepare_case(size: int, mix: str, builder: MiddleNode, sink: bool, budget: float) -> Case:
    raw = chain(size, builder)
    gc.collect()
    started = time.perf_counter()
    plan = compile_canvas(raw, NODE_TYPES)
    compile_ms = (time.perf_counter() - started) * 1000
    result = await Execution(plan).run(plan.entry.prepare(PARAMETERS))  # type: ignore[attr-defined]
    assert result.output == {"output": "world"}, result.output
    # Calibrate: enough runs per repetition to fill about `budget` seconds (bounded both ways).
    once = await _time_runs(plan, 3, sink) / 3
    runs = max(3, min(200_000, int(budget / max(once, 1e-7))))
    return Case(mix, sink, size, plan, compile_ms, runs)


async def main_async(args: argparse.Namespace, mixes: dict[str, tuple[str, MiddleNode]]) -> list[Row]:
    sizes = [int(s) for s in args.sizes.split(",")]
    sinks = {"none": [False], "list": [True], "both": [False, True]}[args.sink]
    cases = [
        await prepare_case(size, mix, mixes[mix][1], sink, args.budget)
        for size in sizes
        for mix in args.mixes.split(",")
        for sink in sinks
    ]
    # Round-robin: each repetition times every case once, so drift on this noisy machine hits all alike.
    samples: list[list[float]] = [[] for _ in cases]
    for repetition in range(args.repeat):
        for case, sample in zip(cases, samples, strict=True):
            gc.collect()
            elapsed = await _time_runs(case.plan, case.runs, case.sink)
            sample.append(elapsed / case.runs / (case.size + 2) * 1e6)
        print(f"  repetition {repetition + 1}/{args.repeat} done", file=sys.stderr, flush=True)
    rows = []
    print(
        f"{'mix':16} {'sink':4} {'N':>5}  {'compile ms':>10}  {'µs/node':>8}  {'min':>6}  {'max':>6}  "
        f"{'runs/rep':>8}  verdict"
    )
    for case, sample in zip(cases, samples, strict=True):
        row = Row(
            case.mix,
            "list" if case.sink else "none",
            case.size,
            case.compile_ms,
            case.runs,
            statistics.median(sample),
            min(sample),
            max(sample),
        )
        rows.append(row)
        verdict = "ok" if row.us_per_node <= TARGET_US_PER_NODE else "MISSED"
        print(
            f"{row.mix:16} {row.sink:4} {row.size:5}  {row.compile_ms:10.2f}  {row.us_per_node:8.2f}  "
            f"{row.us_per_node_min:6.2f}  {row.us_per_node_max:6.2f}  {row.runs:8}  {verdict}"
        )
    return rows


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10,100,1000", help="comma-separated chain lengths N")
    mixes = available_mixes()
    parser.add_argument(
        "--mixes", default=",".join(mixes), help=f"comma-separated node mixes: {', '.join(mixes)}"
    )
    parser.add_argument(
        "--sink",
        choices=["none", "list", "both"],
        default="both",
        help="event sink: none (engine default) or a list.append collector, as a server uses",
    )
    parser.add_argument("--repeat", type=int, default=7, help="repetitions per figure (median reported)")
    parser.add_argument("--budget", type=float, default=0.3, help="seconds per repetition (sets run count)")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="instead of timing, cProfile one mix/size (first of --mixes/--sizes) into FILE",
    )
    args = parser.parse_args()
    for mix in args.mixes.split(","):
        if mix not in mixes:
            parser.error(f"unknown mix {mix!r}")

    print(
        f"knotflow engine overhead — {time.strftime('%Y-%m-%d %H:%M')}, "
        f"python {platform.python_version()}, loop {args.loop}, {os.cpu_count()} cores, "
        f"{platform.processor() or platform.machine()}"
    )
    types = sorted(NODE_TYPES.items())
    print(f"implemented node types: {', '.join(f'{k}={v.__name__}' for k, v in types)}")
    for name, (description, _) in mixes.items():
        print(f"  mix {name}: {description}")
    print(f"target: ≤ {TARGET_US_PER_NODE:.0f} µs/node (µs/node = one run's time / (N + 2))\n")

    if args.profile:
        _profile(args, mixes)
        return
    with asyncio.Runner(loop_factory=_loop_factory(args.loop)) as runner:
        runner.run(main_async(args, mixes))


def _profile(args: argparse.Namespace, mixes: dict[str, tuple[str, MiddleNode]]) -> None:
    import cProfile
    import pstats

    size = int(args.sizes.split(",")[0])
    mix = args.mixes.split(",")[0]
    plan = compile_canvas(chain(size, mixes[mix][1]), NODE_TYPES)
    runs = max(10, 20_000 // (size + 2))
    profiler = cProfile.Profile()
    with asyncio.Runner(loop_factory=_loop_factory(args.loop)) as runner:
        profiler.enable()
        runner.run(_time_runs(plan, runs, args.sink == "list"))
        profiler.disable()
    profiler.dump_stats(args.profile)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
