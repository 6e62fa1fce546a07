import { useEffect, useId, useState, type FormEvent } from "react";
import { Link, useLocation } from "wouter";
import { keepPreviousData, useMutation, useQuery } from "@tanstack/react-query";
import { Search, Upload } from "lucide-react";
import { api, query, type WorkflowItem } from "../api";
import { localTime } from "../format";
import { useQueryParams } from "../params";
import { useCanEdit, useSession } from "../session";

const STATUSES: Array<[string, string]> = [
  ["all", "Any"],
  ["published_online", "Published"],
  ["published_draft", "Published, draft changed since"],
  ["unpublished_draft", "Never published"],
];

interface WorkflowPage { items: WorkflowItem[]; has_more: boolean; page: number }

export function Workflows() {
  const session = useSession();
  const [filters, update] = useQueryParams();
  const q = filters.get("q") ?? "";
  const page = Number(filters.get("page") ?? "1") || 1;
  const [text, setText] = useState(q);
  useEffect(() => setText(q), [q]);
  useEffect(() => {
    const timer = window.setTimeout(() => text !== q && update({ q: text }), 300);
    return () => window.clearTimeout(timer);
  });
  const params = {
    q, space_id: filters.get("space_id"), app_id: filters.get("app_id"), status: filters.get("status"), page,
  };
  const { data, error, isPending } = useQuery({
    queryKey: ["workflows", params],
    queryFn: () => api.get<WorkflowPage>(`/workflows${query(params)}`),
    placeholderData: keepPreviousData,
  });
  const spaces = session.spaces ?? [];
  const spaceName = (id: string) => spaces.find((s) => s.id === id)?.name ?? id;
  return (
    <section>
      <div className="page-head">
        <h1>Workflows</h1>
        {useCanEdit() && <div className="push"><ImportCanvas /></div>}
      </div>
      <form className="filters" role="search" aria-label="Filter workflows" onSubmit={(e) => e.preventDefault()}>
        <label className="with-icon">
          <Search size={16} aria-hidden />
          <span className="sr-only">Search by name</span>
          <input type="search" placeholder="Search by name" value={text} onChange={(e) => setText(e.target.value)} />
        </label>
        <label>Space
          <select value={params.space_id ?? ""} onChange={(e) => update({ space_id: e.target.value })}>
            <option value="">All spaces</option>
            {spaces.map((space) => <option key={space.id} value={space.id}>{space.name} ({space.id})</option>)}
          </select>
        </label>
        <label>Published
          <select value={params.status ?? "all"} onChange={(e) => update({ status: e.target.value === "all" ? "" : e.target.value })}>
            {STATUSES.map(([value, label]) => <option key={value} value={value}>{label}</option>)}
          </select>
        </label>
        <label>App
          <input value={params.app_id ?? ""} placeholder="app id" onChange={(e) => update({ app_id: e.target.value.trim() })} />
        </label>
      </form>
      {error && <p className="notice error" role="alert">{error.message}</p>}
      {isPending && <p className="muted">Loading…</p>}
      {data && data.items.length === 0 && <p className="notice">No workflow matches.</p>}
      {data && data.items.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr><th>Name</th><th>Mode</th><th>Space</th><th>Version</th><th>Updated</th></tr>
            </thead>
            <tbody>
              {data.items.map((workflow) => (
                <tr key={workflow.workflow_id}>
                  <td>
                    <Link href={`/workflows/${workflow.workflow_id}`}>{workflow.name}</Link>
                    {workflow.description && <div className="muted small">{workflow.description}</div>}
                  </td>
                  <td>{workflow.mode}{workflow.app_id && <div className="muted small">app {workflow.app_id}</div>}</td>
                  <td>{spaceName(workflow.space_id)}</td>
                  <td><Published workflow={workflow} /></td>
                  <td><time dateTime={new Date(workflow.updated_at * 1000).toISOString()}>{localTime(workflow.updated_at)}</time></td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {data && (page > 1 || data.has_more) && (
        <nav className="pager" aria-label="Pages">
          <button type="button" disabled={page <= 1} onClick={() => update({ page: String(page - 1) }, true)}>Previous</button>
          <span>Page {page}</span>
          <button type="button" disabled={!data.has_more} onClick={() => update({ page: String(page + 1) }, true)}>Next</button>
        </nav>
      )}
    </section>
  );
}

export function Published({ workflow }: { workflow: WorkflowItem }) {
  if (!workflow.latest_version) return <span className="badge draft">Draft only</span>;
  return (
    <span>
      <span className="badge published">{workflow.latest_version}</span>
      {workflow.draft_changed && <span className="badge draft" title="The draft changed after this version was published">draft changed</span>}
    </span>
  );
}

function ImportCanvas() {
  const session = useSession();
  const id = useId();
  const [open, setOpen] = useState(false);
  const [file, setFile] = useState<File | null>(null);
  const [name, setName] = useState("");
  const [space, setSpace] = useState(session.spaces?.[0]?.id ?? "");
  const [publish, setPublish] = useState(true);
  const [chatflow, setChatflow] = useState(false);
  const [, navigate] = useLocation();
  const importing = useMutation({
    mutationFn: async () => api.post<WorkflowItem>("/workflows", {
      canvas: await file!.text(), file_name: file!.name, name, space_id: space, publish, chatflow,
    }),
    onSuccess: (workflow) => navigate(`/workflows/${workflow.workflow_id}`),
  });
  if (!open) {
    return <button type="button" onClick={() => setOpen(true)}><Upload size={16} aria-hidden /> Import a canvas</button>;
  }
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (file) importing.mutate();
  };
  return (
    <form className="panel import" onSubmit={submit} aria-label="Import a canvas">
      <h2>Import a canvas</h2>
      <div className="field">
        <label htmlFor={`${id}-file`}>Canvas file (JSON or YAML, as Coze Studio exports it)</label>
        <input id={`${id}-file`} type="file" accept=".json,.yaml,.yml,application/json" required
          onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
      </div>
      <div className="field">
        <label htmlFor={`${id}-name`}>Name</label>
        <input id={`${id}-name`} value={name} placeholder="the file's name" onChange={(e) => setName(e.target.value)} />
      </div>
      <div className="field">
        <label htmlFor={`${id}-space`}>Space</label>
        <select id={`${id}-space`} value={space} onChange={(e) => setSpace(e.target.value)}>
          {(session.spaces ?? []).map((s) => <option key={s.id} value={s.id}>{s.name} ({s.id})</option>)}
        </select>
      </div>
      <label className="check"><input type="checkbox" checked={publish} onChange={(e) => setPublish(e.target.checked)} /> Publish it</label>
      <label className="check"><input type="checkbox" checked={chatflow} onChange={(e) => setChatflow(e.target.checked)} /> It is a chatflow</label>
      {importing.error && <p className="error" role="alert">{importing.error.message}</p>}
      <div className="actions">
        <button type="submit" disabled={!file || importing.isPending}>{importing.isPending ? "Importing…" : "Import"}</button>
        <button type="button" className="quiet" onClick={() => setOpen(false)}>Cancel</button>
      </div>
    </form>
  );
}
