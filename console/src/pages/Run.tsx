// A run's page: what it was given and gave, a timeline bar per node execution, each node's inputs and outputs,
// the canvas coloured by status, a live view while it runs, and the question it waits on.
import { useEffect, useMemo, useState } from "react";
import { Link, useParams } from "wouter";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, streamRun, type NodeRun, type RunDetail, type RunRecord, type StreamEvent } from "../api";
import { Answer } from "../components/Answer";
import { Canvas } from "../components/Canvas";
import { EventLog } from "../components/EventLog";
import { Json } from "../components/Json";
import { Status } from "../components/Status";
import { duration, isoTime, localTime } from "../format";
import { nodeKind } from "../nodeTypes";

/** While the run runs: node executions and status changes as the server records them. */
function useLive(executeId: string, running: boolean): { nodes: NodeRun[]; run: RunRecord | null; live: boolean } {
  const client = useQueryClient();
  const [nodes, setNodes] = useState<NodeRun[]>([]);
  const [run, setRun] = useState<RunRecord | null>(null);
  const [live, setLive] = useState(false);
  useEffect(() => {
    if (!running) return;
    const source = new EventSource(`/console/api/runs/${executeId}/live`);
    setLive(true);
    source.addEventListener("node", (event) => {
      const node = JSON.parse((event as MessageEvent).data) as NodeRun;
      setNodes((previous) => previous.some((n) => n.node_execute_uuid === node.node_execute_uuid)
        ? previous : [...previous, node]);
    });
    source.addEventListener("run", (event) => setRun(JSON.parse((event as MessageEvent).data)));
    source.addEventListener("end", () => {
      source.close();
      setLive(false);
      client.invalidateQueries({ queryKey: ["run", executeId] });
    });
    source.onerror = () => {
      // The server ended the stream or went away: stop, and read the run afresh.
      source.close();
      setLive(false);
      client.invalidateQueries({ queryKey: ["run", executeId] });
    };
    return () => source.close();
  }, [executeId, running, client]);
  return { nodes, run, live };
}

export function RunPage() {
  const { id } = useParams<{ id: string }>();
  const { data, error } = useQuery({ queryKey: ["run", id], queryFn: () => api.get<RunDetail>(`/runs/${id}`) });
  const running = data?.run.status === "Running";
  const live = useLive(id, running);
  if (error) return <p className="notice error" role="alert">{error.message}</p>;
  if (!data) return <p className="muted">Loading…</p>;
  const run = running && live.run ? live.run : data.run;
  const known = new Set(data.nodes.map((n) => n.node_execute_uuid));
  const nodes = [...data.nodes, ...live.nodes.filter((n) => !known.has(n.node_execute_uuid))]
    .sort((a, b) => a.started_at - b.started_at);
  return <RunView detail={data} run={run} nodes={nodes} live={live.live} />;
}

function RunView({ detail, run, nodes, live }: { detail: RunDetail; run: RunRecord; nodes: NodeRun[]; live: boolean }) {
  const [selected, setSelected] = useState<string | null>(null);
  const [view, setView] = useState<"timeline" | "canvas">("timeline");
  const chosen = nodes.find((n) => n.node_execute_uuid === selected) ?? null;
  const statuses = useMemo(() => {
    const result: Record<string, string> = {};
    for (const node of nodes) result[node.node_id] = node.status; // the latest execution of each node
    return result;
  }, [nodes]);
  const end = run.status === "Running" ? Date.now() / 1000 : Math.max(run.updated_at, ...nodes.map((n) => n.finished_at));
  return (
    <section>
      <p className="crumbs"><Link href="/runs">Runs</Link> /</p>
      <div className="page-head">
        <h1>Run of <Link href={`/workflows/${run.workflow_id}`}>{run.workflow_name || run.workflow_id}</Link></h1>
        <Status status={run.status} />
        {live && <span className="badge live" role="status">Live</span>}
      </div>
      <dl className="facts inline-facts">
        <div><dt>Run id</dt><dd><code>{run.execute_id}</code></dd></div>
        <div><dt>Version</dt><dd>{run.version}</dd></div>
        <div><dt>Started</dt><dd><time dateTime={isoTime(run.created_at)}>{localTime(run.created_at)}</time></dd></div>
        <div><dt>Took</dt><dd>{run.status === "Running" ? "running…" : duration(run.updated_at - run.created_at)}</dd></div>
        <div><dt>Connector</dt><dd>{run.connector} ({run.connector_id})</dd></div>
        <div><dt>Tokens</dt><dd>{run.input_tokens + run.output_tokens} ({run.input_tokens} in, {run.output_tokens} out)</dd></div>
        <div><dt>Log id</dt><dd><code>{run.logid}</code></dd></div>
      </dl>
      {run.error_message && <p className="notice error" role="alert">Error {run.error_code}: {run.error_message}</p>}
      {detail.interrupt && run.status === "Interrupted" && <Waiting key={detail.interrupt.event_id} detail={detail} />}
      <div className="io">
        <div><h2>Input</h2><Json value={run.inputs} label="Run input" /></div>
        <div><h2>Output</h2><Json value={run.output} label="Run output" /></div>
      </div>
      <nav className="tabs" aria-label="Run views">
        <button type="button" aria-pressed={view === "timeline"} onClick={() => setView("timeline")}>Timeline</button>
        <button type="button" aria-pressed={view === "canvas"} onClick={() => setView("canvas")} disabled={!detail.canvas}>Canvas</button>
      </nav>
      <div className="split">
        {view === "timeline" ? (
          <Timeline nodes={nodes} start={run.created_at} end={end} selected={selected} onSelect={setSelected} />
        ) : detail.canvas && (
          <Canvas canvas={detail.canvas} statuses={statuses} selected={chosen?.node_id ?? null}
            onSelect={(nodeId) => setSelected(nodeId ? [...nodes].reverse().find((n) => n.node_id === nodeId)?.node_execute_uuid ?? null : null)} />
        )}
        <aside className="side" aria-label="Node execution">
          {chosen ? <NodeDetail node={chosen} /> : <p className="muted">Choose a node execution to see its inputs and outputs.</p>}
        </aside>
      </div>
    </section>
  );
}

function Timeline({ nodes, start, end, selected, onSelect }: {
  nodes: NodeRun[];
  start: number;
  end: number;
  selected: string | null;
  onSelect: (uuid: string) => void;
}) {
  if (!nodes.length) return <p className="muted">No node has finished yet.</p>;
  const first = Math.min(start, ...nodes.map((n) => n.started_at));
  const span = Math.max(end - first, 0.001);
  return (
    <ol className="timeline" aria-label="Timeline: one bar per node execution">
      {nodes.map((node) => {
        const kind = nodeKind(node.node_type);
        const Icon = kind.icon;
        const left = ((node.started_at - first) / span) * 100;
        const width = Math.max(((node.finished_at - node.started_at) / span) * 100, 0.6);
        return (
          <li key={node.node_execute_uuid} style={{ paddingLeft: node.depth * 18 }} data-depth={node.depth}>
            <button type="button" className={`row status-${node.status}`} aria-pressed={selected === node.node_execute_uuid}
              onClick={() => onSelect(node.node_execute_uuid)} data-node-id={node.node_id}>
              <span className="row-label">
                <Icon size={14} aria-hidden />
                <span className="row-title">{node.title || node.node_id}</span>
                {node.iteration !== null && <span className="row-iteration">#{node.iteration}</span>}
                <span className="sr-only">{kind.label},</span>
                <span className="row-status">{node.status}</span>
                {node.warnings.length > 0 && <span className="badge warn">{node.warnings.length} warning{node.warnings.length > 1 ? "s" : ""}</span>}
                <Tokens node={node} />
              </span>
              <span className="track" aria-hidden>
                <span className="bar" style={{ left: `${Math.min(left, 99.4)}%`, width: `${Math.min(width, 100 - Math.min(left, 99.4))}%` }} />
              </span>
              <span className="row-time">{duration(node.finished_at - node.started_at)}</span>
            </button>
          </li>
        );
      })}
    </ol>
  );
}

/** What a node's model calls used, for a node that called one: the total, in and out on hover. */
function Tokens({ node }: { node: NodeRun }) {
  if (node.input_tokens === null || node.output_tokens === null) return null;
  const total = node.input_tokens + node.output_tokens;
  const split = `${node.input_tokens} in, ${node.output_tokens} out`;
  return (
    <span className="row-tokens" title={split}>
      {total} token{total === 1 ? "" : "s"}<span className="sr-only"> ({split})</span>
    </span>
  );
}

function NodeDetail({ node }: { node: NodeRun }) {
  const kind = nodeKind(node.node_type);
  return (
    <div className="node-detail">
      <h3>{node.title || node.node_id}</h3>
      <dl className="facts">
        <dt>Status</dt><dd><Status status={node.status} /></dd>
        <dt>Type</dt><dd>{kind.label} ({node.node_type})</dd>
        <dt>Node id</dt><dd><code>{node.node_id}</code></dd>
        <dt>Started</dt><dd><time dateTime={isoTime(node.started_at)}>{localTime(node.started_at)}</time></dd>
        <dt>Took</dt><dd>{duration(node.finished_at - node.started_at)}</dd>
        {node.input_tokens !== null && node.output_tokens !== null && (
          <><dt>Tokens</dt><dd>{node.input_tokens + node.output_tokens} ({node.input_tokens} in, {node.output_tokens} out)</dd></>
        )}
      </dl>
      {node.error && <p className={node.status === "Fail" ? "notice error" : "notice warn"} role="note">{node.error}</p>}
      {node.warnings.length > 0 && (
        <ul className="warnings" aria-label="Warnings">{node.warnings.map((w, i) => <li key={i}>{w}</li>)}</ul>
      )}
      <h4>Inputs</h4>
      <Json value={node.inputs} label={`Inputs of ${node.title}`} />
      <h4>Outputs</h4>
      <Json value={node.outputs} label={`Outputs of ${node.title}`} />
    </div>
  );
}

/** The question the run waits on, answered from here; what follows streams in below. */
function Waiting({ detail }: { detail: RunDetail }) {
  const client = useQueryClient();
  const [events, setEvents] = useState<StreamEvent[]>([]);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const interrupt = detail.interrupt!;
  const answer = async (resumeData: string) => {
    setBusy(true);
    setProblem(null);
    try {
      await streamRun(`/runs/${detail.run.execute_id}/resume`, {
        event_id: interrupt.event_id, interrupt_type: interrupt.interrupt_type, resume_data: resumeData,
      }, () => undefined, (event) => event.event !== "PING" && setEvents((previous) => [...previous, event]));
      client.invalidateQueries({ queryKey: ["run", detail.run.execute_id] });
    } catch (caught) {
      setProblem((caught as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="panel waiting">
      <h2>Waiting for an answer</h2>
      <Answer question={interrupt} onAnswer={(data) => void answer(data)} busy={busy} />
      {problem && <p className="error" role="alert">{problem}</p>}
      <EventLog events={events} />
    </div>
  );
}
