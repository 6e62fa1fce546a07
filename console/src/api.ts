// The console's JSON API and its streams. Every change carries the session's CSRF token; the session cookie
// itself is HttpOnly and never seen here.
import { EventSourceParserStream } from "eventsource-parser/stream";

export class ApiError extends Error {
  constructor(message: string, readonly code: number, readonly status: number) {
    super(message);
  }
}

let csrfToken = "";
export function setCsrf(token: string): void {
  csrfToken = token;
}

export const SIGNED_OUT_EVENT = "knotflow:signed-out";
const BASE = "/console/api";

const UNAUTHENTICATED = 4100;

/** The server's refusal (Coze's envelope: `code`, `msg`); 4100 means the session is gone. */
async function failure(response: Response, body?: { code?: number; msg?: string } | null): Promise<ApiError> {
  const payload = body === undefined ? await response.json().catch(() => null) : body;
  const code = payload?.code ?? response.status;
  if (code === UNAUTHENTICATED) window.dispatchEvent(new Event(SIGNED_OUT_EVENT));
  return new ApiError(payload?.msg ?? `the server answered ${response.status}`, code, response.status);
}

function headers(method: string, json: boolean, accept = "application/json"): Record<string, string> {
  const result: Record<string, string> = { Accept: accept };
  if (method !== "GET") result["X-CSRF-Token"] = csrfToken;
  if (json) result["Content-Type"] = "application/json";
  return result;
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const isForm = body instanceof FormData;
  const response = await fetch(BASE + path, {
    method,
    credentials: "same-origin",
    headers: headers(method, body !== undefined && !isForm),
    body: isForm ? body : body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw await failure(response);
  const payload = await response.json();
  if (payload.code !== 0) throw await failure(response, payload);
  return payload.data as T;
}

export const api = {
  get: <T>(path: string) => request<T>("GET", path),
  post: <T>(path: string, body: unknown = {}) => request<T>("POST", path, body),
  delete: <T>(path: string) => request<T>("DELETE", path),
};

export function query(params: Record<string, string | number | null | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export interface StreamEvent {
  id?: string;
  event: string;
  data: Record<string, unknown>;
}

/** POST a run (or an answer) and hand each Coze SSE event to `onEvent` as it arrives. Resolves when the
 *  stream ends; `onStart` gets the run's id as soon as the server has accepted the run. */
export async function streamRun(path: string, body: unknown, onStart: (executeId: string) => void,
  onEvent: (event: StreamEvent) => void, signal?: AbortSignal): Promise<void> {
  const response = await fetch(BASE + path, {
    method: "POST",
    credentials: "same-origin",
    headers: headers("POST", true, "text/event-stream"),
    body: JSON.stringify(body),
    signal,
  });
  if (!response.ok) throw await failure(response);
  if (!response.headers.get("content-type")?.startsWith("text/event-stream")) throw await failure(response);
  const executeId = response.headers.get("x-knotflow-execute-id");
  if (executeId) onStart(executeId);
  const reader = response.body!
    .pipeThrough(new TextDecoderStream())
    .pipeThrough(new EventSourceParserStream())
    .getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    let data: Record<string, unknown> = {};
    try {
      data = JSON.parse(value.data);
    } catch {
      data = { content: value.data };
    }
    onEvent({ id: value.id, event: value.event ?? "message", data });
  }
}

// --- what the API returns ----------------------------------------------------------------------------------
export interface Space { id: string; name: string }
export interface Session {
  signed_in: boolean;
  csrf: string;
  token_name?: string;
  permissions?: string[];
  spaces?: Space[];
}
export interface WorkflowItem {
  workflow_id: string;
  name: string;
  description: string;
  mode: string;
  space_id: string;
  app_id: string;
  requires_bot: boolean;
  latest_version: string | null;
  published_at: number | null;
  draft_changed: boolean;
  created_at: number;
  updated_at: number;
}
export interface Version { version: string; description: string; created_at: number }
export interface WorkflowDetail extends WorkflowItem { versions: Version[] }
export interface Parameter {
  name: string;
  type: string;
  required: boolean;
  description: string;
  default: unknown;
  file: boolean;
  element: Parameter | null;
}
export interface CanvasNode {
  id: string;
  type: string;
  title: string;
  description: string;
  known: boolean;
  position: { x: number; y: number };
  canvas_position: { x: number; y: number } | null;
  ports: string[];
  parent: string | null;
  data: Record<string, unknown>;
}
export interface CanvasEdge {
  source: string;
  target: string;
  source_port: string;
  target_port: string;
  parent: string | null;
}
export interface CanvasPayload {
  version: string;
  nodes: CanvasNode[];
  edges: CanvasEdge[];
  problem: string | null;
  parameters: Parameter[];
}
export interface RunItem {
  execute_id: string;
  workflow_id: string;
  workflow_name: string;
  version: string;
  space_id: string;
  status: string;
  connector_id: string;
  connector: string;
  error_code: number;
  error_message: string;
  tokens: number;
  created_at: number;
  updated_at: number;
}
export interface RunPage {
  items: RunItem[];
  next: string | null;
  connectors: Record<string, string>;
  statuses: string[];
}
export interface RunRecord extends Omit<RunItem, "tokens"> {
  run_mode: number;
  bot_id: string;
  app_id: string;
  inputs: unknown;
  output: unknown;
  input_tokens: number;
  output_tokens: number;
  logid: string;
}
export interface NodeRun {
  node_execute_uuid: string;
  node_id: string;
  node_type: string;
  title: string;
  status: string;
  inputs: unknown;
  outputs: unknown;
  error: string | null;
  error_level: string;
  warnings: string[];
  started_at: number;
  finished_at: number;
  parent: string | null;
  depth: number;
  iteration: number | null;
  input_tokens: number | null; // null: the node called no model
  output_tokens: number | null;
}
export interface Interrupt {
  event_id: string;
  interrupt_type: number;
  node_id: string;
  node_title: string;
  node_type: string;
  data: unknown;
  created_at: number;
}
export interface RunDetail {
  run: RunRecord;
  nodes: NodeRun[];
  interrupt: Interrupt | null;
  canvas: CanvasPayload | null;
}
