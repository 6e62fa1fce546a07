// Try it: a form built from the Start node's parameters; the run's events as they arrive; its questions.
import { useId, useRef, useState, type FormEvent } from "react";
import { Link } from "wouter";
import { useQuery } from "@tanstack/react-query";
import { api, query, streamRun, type CanvasPayload, type Parameter, type StreamEvent, type WorkflowDetail } from "../api";
import { Answer, type Question } from "../components/Answer";
import { EventLog } from "../components/EventLog";

type Values = Record<string, unknown>;

function convert(parameter: Parameter, raw: unknown): unknown {
  if (raw === undefined || raw === "" || raw === null) return undefined;
  if (parameter.file) return raw;
  switch (parameter.type) {
    case "integer":
    case "float":
      return Number(raw);
    case "boolean":
      return raw === "true";
    case "object":
    case "list":
      if (Array.isArray(raw)) return raw;
      try {
        return JSON.parse(String(raw));
      } catch {
        throw new Error(`${parameter.name}: enter JSON (${parameter.type === "list" ? "[…]" : "{…}"})`);
      }
    default:
      return raw;
  }
}

/** Merge a streamed chunk into the message it continues, so that a streaming answer reads as one text. */
function appendEvent(events: StreamEvent[], event: StreamEvent): StreamEvent[] {
  if (event.event === "PING") return events;
  const last = events[events.length - 1];
  if (event.event === "Message" && last?.event === "Message" && last.data.node_id === event.data.node_id
    && !last.data.node_is_finish) {
    const merged = { ...event, data: { ...event.data, content: `${last.data.content ?? ""}${event.data.content ?? ""}` } };
    return [...events.slice(0, -1), merged];
  }
  return [...events, event];
}

export function TryIt({ workflow }: { workflow: WorkflowDetail }) {
  const version = workflow.latest_version;
  const { data: canvas, error } = useQuery({
    queryKey: ["canvas", workflow.workflow_id, version],
    queryFn: () => api.get<CanvasPayload>(`/workflows/${workflow.workflow_id}/canvas${query({ version })}`),
    enabled: version !== null,
  });
  if (!version) return <p className="notice">Publish the workflow to try it: runs use its latest published version.</p>;
  if (error) return <p className="notice error" role="alert">{error.message}</p>;
  if (!canvas) return <p className="muted">Loading…</p>;
  return <TryForm workflow={workflow} parameters={canvas.parameters} version={version} />;
}

function TryForm({ workflow, parameters, version }: { workflow: WorkflowDetail; parameters: Parameter[]; version: string }) {
  const id = useId();
  const [values, setValues] = useState<Values>({});
  const [botId, setBotId] = useState("");
  const [events, setEvents] = useState<StreamEvent[]>([]);
  const [executeId, setExecuteId] = useState<string | null>(null);
  const [question, setQuestion] = useState<Question | null>(null);
  const [running, setRunning] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const [uploading, setUploading] = useState(0);
  const abort = useRef<AbortController | null>(null);

  const follow = async (path: string, body: unknown) => {
    abort.current = new AbortController();
    setRunning(true);
    setProblem(null);
    try {
      await streamRun(path, body, setExecuteId, (event) => {
        setEvents((previous) => appendEvent(previous, event));
        if (event.event === "Interrupt") {
          const data = event.data.interrupt_data as { event_id: string; type: number; data: unknown };
          setQuestion({ event_id: data.event_id, interrupt_type: data.type, data: data.data,
            node_title: String(event.data.node_title ?? "") });
        }
      }, abort.current.signal);
    } catch (caught) {
      if (!(caught instanceof DOMException && caught.name === "AbortError")) setProblem((caught as Error).message);
    } finally {
      setRunning(false);
    }
  };

  const submit = (event: FormEvent) => {
    event.preventDefault();
    let parametersToSend: Values;
    try {
      parametersToSend = Object.fromEntries(parameters
        .map((p) => [p.name, convert(p, values[p.name])])
        .filter(([, value]) => value !== undefined));
    } catch (caught) {
      setProblem((caught as Error).message);
      return;
    }
    setEvents([]);
    setQuestion(null);
    setExecuteId(null);
    void follow(`/workflows/${workflow.workflow_id}/runs`, { parameters: parametersToSend, bot_id: botId || undefined });
  };

  const answer = (resumeData: string) => {
    if (!question || !executeId) return;
    const asked = question;
    setQuestion(null);
    setEvents((previous) => [...previous, { event: "Answer", data: { content: resumeData } }]);
    void follow(`/runs/${executeId}/resume`, {
      event_id: asked.event_id, interrupt_type: asked.interrupt_type, resume_data: resumeData,
    });
  };

  const upload = async (parameter: Parameter, files: FileList | null) => {
    if (!files?.length) {
      setValues({ ...values, [parameter.name]: undefined });
      return;
    }
    setUploading((n) => n + 1);
    setProblem(null);
    try {
      const ids: Array<{ file_id: string }> = [];
      for (const file of Array.from(files)) {
        const form = new FormData();
        form.append("file", file);
        const stored = await api.post<{ id: string }>("/files", form);
        ids.push({ file_id: stored.id });
      }
      setValues((previous) => ({ ...previous, [parameter.name]: parameter.type === "list" ? ids : ids[0] }));
    } catch (caught) {
      setProblem(`${parameter.name}: ${(caught as Error).message}`);
    } finally {
      setUploading((n) => n - 1);
    }
  };

  return (
    <div className="try">
      <form className="panel" onSubmit={submit} aria-label="Run parameters">
        <p className="muted small">Runs version {version} through the console's connector.</p>
        {parameters.length === 0 && <p className="muted">This workflow takes no parameters.</p>}
        {parameters.map((parameter) => (
          <ParameterField key={parameter.name} id={`${id}-${parameter.name}`} parameter={parameter}
            value={values[parameter.name]} onChange={(value) => setValues({ ...values, [parameter.name]: value })}
            onFiles={(files) => void upload(parameter, files)} />
        ))}
        {workflow.requires_bot && (
          <div className="field">
            <label htmlFor={`${id}-bot`}>Bot id <span aria-hidden>*</span></label>
            <input id={`${id}-bot`} required value={botId} onChange={(e) => setBotId(e.target.value)} />
            <small>This workflow keeps data per bot.</small>
          </div>
        )}
        {problem && <p className="error" role="alert">{problem}</p>}
        <div className="actions">
          <button type="submit" disabled={running || uploading > 0}>{running ? "Running…" : "Run"}</button>
          {running && <button type="button" className="quiet" onClick={() => abort.current?.abort()}>Stop</button>}
        </div>
      </form>
      <div className="run-output" aria-label="Run output">
        {executeId && (
          <p className="run-link">Run <code>{executeId}</code> — <Link href={`/runs/${executeId}`}>open the run's page</Link></p>
        )}
        <EventLog events={events} />
        {question && <Answer question={question} onAnswer={answer} busy={running} />}
      </div>
    </div>
  );
}

function ParameterField({ id, parameter, value, onChange, onFiles }: {
  id: string;
  parameter: Parameter;
  value: unknown;
  onChange: (value: unknown) => void;
  onFiles: (files: FileList | null) => void;
}) {
  const fileList = parameter.type === "list" && parameter.element?.file;
  const typeName = parameter.file || fileList ? (fileList ? "files" : "file")
    : parameter.type === "list" && parameter.element ? `list of ${parameter.element.type}` : parameter.type;
  const placeholder = parameter.default === null || parameter.default === undefined ? undefined
    : `default: ${typeof parameter.default === "string" ? parameter.default : JSON.stringify(parameter.default)}`;
  const required = parameter.required && placeholder === undefined;
  let input;
  if (parameter.file || fileList) {
    input = <input id={id} type="file" multiple={Boolean(fileList)} required={required}
      onChange={(e) => onFiles(e.target.files)} />;
  } else if (parameter.type === "boolean") {
    input = (
      <select id={id} value={String(value ?? "")} required={required} onChange={(e) => onChange(e.target.value)}>
        <option value="">{placeholder ?? "(not given)"}</option>
        <option value="true">true</option>
        <option value="false">false</option>
      </select>
    );
  } else if (parameter.type === "object" || parameter.type === "list") {
    input = <textarea id={id} rows={3} value={String(value ?? "")} placeholder={placeholder ?? (parameter.type === "list" ? "[…]" : "{…}")}
      required={required} onChange={(e) => onChange(e.target.value)} spellCheck={false} />;
  } else {
    input = <input id={id} type={parameter.type === "integer" || parameter.type === "float" ? "number" : "text"}
      step={parameter.type === "float" ? "any" : undefined} value={String(value ?? "")} placeholder={placeholder}
      required={required} onChange={(e) => onChange(e.target.value)} />;
  }
  return (
    <div className="field">
      <label htmlFor={id}>{parameter.name} <span className="muted">({typeName})</span>{parameter.required && <span aria-hidden> *</span>}</label>
      {input}
      {parameter.description && <small>{parameter.description}</small>}
    </div>
  );
}
