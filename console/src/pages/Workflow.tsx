import { useState, type FormEvent } from "react";
import { Link, useParams, useSearch, useLocation } from "wouter";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, query, type CanvasPayload, type WorkflowDetail } from "../api";
import { Canvas, NodeConfig } from "../components/Canvas";
import { localTime } from "../format";
import { useCanEdit, useSession } from "../session";
import { Published } from "./Workflows";
import { TryIt } from "./TryIt";

const TABS: Array<[string, string]> = [["canvas", "Canvas"], ["try", "Try it"], ["versions", "Versions"]];

export function WorkflowPage() {
  const { id, tab = "canvas" } = useParams<{ id: string; tab?: string }>();
  const session = useSession();
  const { data: workflow, error } = useQuery({
    queryKey: ["workflow", id],
    queryFn: () => api.get<WorkflowDetail>(`/workflows/${id}`),
  });
  if (error) return <p className="notice error" role="alert">{error.message}</p>;
  if (!workflow) return <p className="muted">Loading…</p>;
  const space = session.spaces?.find((s) => s.id === workflow.space_id);
  return (
    <section>
      <p className="crumbs"><Link href="/workflows">Workflows</Link> /</p>
      <div className="page-head">
        <h1>{workflow.name}</h1>
        <Published workflow={workflow} />
      </div>
      {workflow.description && <p>{workflow.description}</p>}
      <dl className="facts inline-facts">
        <div><dt>Workflow id</dt><dd><code>{workflow.workflow_id}</code></dd></div>
        <div><dt>Mode</dt><dd>{workflow.mode}</dd></div>
        <div><dt>Space</dt><dd>{space ? `${space.name} (${space.id})` : workflow.space_id}</dd></div>
        {workflow.app_id && <div><dt>App</dt><dd>{workflow.app_id}</dd></div>}
        <div><dt>Draft saved</dt><dd>{localTime(workflow.updated_at)}</dd></div>
        <div><dt>Runs</dt><dd><Link href={`/runs?workflow_id=${workflow.workflow_id}`}>See its runs</Link></dd></div>
      </dl>
      {useCanEdit() && (workflow.draft_changed || !workflow.latest_version) && <PublishDraft workflow={workflow} />}
      <nav className="tabs" aria-label="Workflow views">
        {TABS.map(([key, label]) => (
          <Link key={key} href={`/workflows/${id}/${key}`} aria-current={tab === key ? "page" : undefined}>{label}</Link>
        ))}
      </nav>
      {tab === "canvas" && <CanvasTab workflow={workflow} />}
      {tab === "try" && <TryIt workflow={workflow} />}
      {tab === "versions" && <Versions workflow={workflow} />}
    </section>
  );
}

function PublishDraft({ workflow }: { workflow: WorkflowDetail }) {
  const client = useQueryClient();
  const [version, setVersion] = useState("");
  const publish = useMutation({
    mutationFn: () => api.post<{ version: string }>(`/workflows/${workflow.workflow_id}/publish`, { version }),
    onSuccess: () => {
      setVersion("");
      client.invalidateQueries({ queryKey: ["workflow", workflow.workflow_id] });
      client.invalidateQueries({ queryKey: ["workflows"] });
      client.invalidateQueries({ queryKey: ["canvas", workflow.workflow_id] });
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    publish.mutate();
  };
  return (
    <form className="panel publish" onSubmit={submit} aria-label="Publish the draft">
      <p>{workflow.latest_version ? "The draft changed since the latest version." : "This workflow has never been published."}</p>
      <label htmlFor="publish-version">Version name</label>
      <input id="publish-version" value={version} placeholder="next v0.0.N" onChange={(e) => setVersion(e.target.value)} />
      <button type="submit" disabled={publish.isPending}>{publish.isPending ? "Publishing…" : "Publish the draft"}</button>
      {publish.error && <p className="error" role="alert">{publish.error.message}</p>}
      {publish.data && <p className="ok" role="status">Published {publish.data.version}.</p>}
    </form>
  );
}

function CanvasTab({ workflow }: { workflow: WorkflowDetail }) {
  const search = new URLSearchParams(useSearch());
  const [location, navigate] = useLocation();
  const version = search.get("version") ?? workflow.latest_version ?? "draft";
  const [selected, setSelected] = useState<string | null>(null);
  const { data: canvas, error } = useQuery({
    queryKey: ["canvas", workflow.workflow_id, version],
    queryFn: () => api.get<CanvasPayload>(`/workflows/${workflow.workflow_id}/canvas${query({ version })}`),
  });
  const node = canvas?.nodes.find((n) => n.id === selected);
  return (
    <div>
      <label className="inline-label">Show
        <select value={version} onChange={(e) => { setSelected(null); navigate(`${location}?version=${encodeURIComponent(e.target.value)}`); }}>
          <option value="draft">the draft</option>
          {workflow.versions.map((v) => <option key={v.version} value={v.version}>version {v.version}</option>)}
        </select>
      </label>
      {error && <p className="notice error" role="alert">{error.message}</p>}
      {canvas && (
        <div className="split">
          <Canvas canvas={canvas} selected={selected} onSelect={setSelected} />
          <aside className="side" aria-label="Selected node">
            {node ? (
              <>
                <button type="button" className="link" onClick={() => setSelected(null)}>All nodes</button>
                <NodeConfig node={node} />
              </>
            ) : <NodeList canvas={canvas} onSelect={setSelected} />}
          </aside>
        </div>
      )}
    </div>
  );
}

/** Every node by name: the keyboard's and the narrow screen's way into the canvas. */
function NodeList({ canvas, onSelect }: { canvas: CanvasPayload; onSelect: (id: string) => void }) {
  return (
    <div>
      <h3>Nodes</h3>
      <p className="muted small">Choose a node to see its configuration.</p>
      <ul className="node-list">
        {canvas.nodes.map((node) => (
          <li key={node.id} style={{ paddingLeft: node.parent ? 16 : 0 }}>
            <button type="button" className="link" onClick={() => onSelect(node.id)}>{node.title || node.id}</button>
          </li>
        ))}
      </ul>
    </div>
  );
}

function Versions({ workflow }: { workflow: WorkflowDetail }) {
  if (!workflow.versions.length) return <p className="notice">No published version yet.</p>;
  return (
    <div className="table-wrap">
      <table>
        <thead><tr><th>Version</th><th>Published</th><th>Description</th><th></th></tr></thead>
        <tbody>
          {workflow.versions.map((v) => (
            <tr key={v.version}>
              <td>{v.version}</td>
              <td>{localTime(v.created_at)}</td>
              <td>{v.description}</td>
              <td><Link href={`/workflows/${workflow.workflow_id}/canvas?version=${encodeURIComponent(v.version)}`}>Canvas</Link></td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
