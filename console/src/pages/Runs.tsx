import { Link } from "wouter";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { api, query, type RunPage, type WorkflowItem } from "../api";
import { Status } from "../components/Status";
import { duration, fromLocalInput, isoTime, localTime, toLocalInput } from "../format";
import { useQueryParams } from "../params";

const FILTERS = ["workflow_id", "status", "connector_id", "since", "until"] as const;

export function Runs() {
  const [params, go] = useQueryParams();
  const filters = Object.fromEntries(FILTERS.map((key) => [key, params.get(key)]));
  const after = params.get("after");
  const { data, error, isPending } = useQuery({
    queryKey: ["runs", filters, after],
    queryFn: () => api.get<RunPage>(`/runs${query({ ...filters, after })}`),
    placeholderData: keepPreviousData,
    refetchInterval: after ? false : 5000, // the newest page stays current
  });
  const { data: workflows } = useQuery({
    queryKey: ["workflows", "all-names"],
    queryFn: () => api.get<{ items: WorkflowItem[] }>("/workflows?page_size=200"),
  });
  const connectors = data?.connectors ?? { "1024": "API", "10000010": "Console" };
  return (
    <section>
      <h1>Runs</h1>
      <form className="filters" aria-label="Filter runs" onSubmit={(e) => e.preventDefault()}>
        <label>Workflow
          <select value={filters.workflow_id ?? ""} onChange={(e) => go({ workflow_id: e.target.value })}>
            <option value="">Any workflow</option>
            {filters.workflow_id && !workflows?.items.some((w) => w.workflow_id === filters.workflow_id) && (
              <option value={filters.workflow_id}>{filters.workflow_id}</option>
            )}
            {workflows?.items.map((w) => <option key={w.workflow_id} value={w.workflow_id}>{w.name}</option>)}
          </select>
        </label>
        <label>Status
          <select value={filters.status ?? ""} onChange={(e) => go({ status: e.target.value })}>
            <option value="">Any status</option>
            {(data?.statuses ?? ["Running", "Success", "Fail", "Interrupted"]).map((s) => <option key={s} value={s}>{s}</option>)}
          </select>
        </label>
        <label>Connector
          <select value={filters.connector_id ?? ""} onChange={(e) => go({ connector_id: e.target.value })}>
            <option value="">Any connector</option>
            {Object.entries(connectors).map(([id, name]) => <option key={id} value={id}>{name} ({id})</option>)}
          </select>
        </label>
        <label>From
          <input type="datetime-local" value={toLocalInput(Number(filters.since) || null)}
            onChange={(e) => go({ since: String(fromLocalInput(e.target.value) ?? "") })} />
        </label>
        <label>To
          <input type="datetime-local" value={toLocalInput(Number(filters.until) || null)}
            onChange={(e) => go({ until: String(fromLocalInput(e.target.value) ?? "") })} />
        </label>
      </form>
      {error && <p className="notice error" role="alert">{error.message}</p>}
      {isPending && <p className="muted">Loading…</p>}
      {data && data.items.length === 0 && <p className="notice">No run matches.</p>}
      {data && data.items.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr><th>Started</th><th>Workflow</th><th>Status</th><th>Connector</th><th>Took</th><th>Tokens</th><th>Run</th></tr>
            </thead>
            <tbody>
              {data.items.map((run) => (
                <tr key={run.execute_id}>
                  <td><time dateTime={isoTime(run.created_at)}>{localTime(run.created_at)}</time></td>
                  <td>
                    {run.workflow_name || run.workflow_id} <span className="muted small">{run.version}</span>
                  </td>
                  <td><Status status={run.status} />{run.error_message && <div className="muted small clip" title={run.error_message}>{run.error_message}</div>}</td>
                  <td>{run.connector}</td>
                  <td>{run.status === "Running" ? "—" : duration(run.updated_at - run.created_at)}</td>
                  <td>{run.tokens}</td>
                  <td><Link href={`/runs/${run.execute_id}`} aria-label={`Run ${run.execute_id} of ${run.workflow_name}`}><code>{run.execute_id}</code></Link></td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <nav className="pager" aria-label="Pages">
        <button type="button" disabled={!after} onClick={() => go({ after: null }, true)}>Newest</button>
        <button type="button" disabled={!data?.next} onClick={() => go({ after: data?.next ?? null }, true)}>Older</button>
      </nav>
    </section>
  );
}
