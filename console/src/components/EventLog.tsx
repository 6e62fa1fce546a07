// A run's events as they arrive: messages, the question it asks, errors, the end.
import type { StreamEvent } from "../api";
import { parseJson } from "../params";

/** A message's content for a person: a question or a form in words, JSON pretty-printed, text as it is. */
export function readable(content: string): string {
  const value = parseJson(content) as Record<string, unknown> | undefined;
  if (!value || typeof value !== "object") return content;
  if (Array.isArray(value.messages)) {
    const asked = [...value.messages].reverse().find((m) => m?.type === "question")?.content;
    if (typeof asked === "string") return asked;
    if (asked && typeof asked === "object") {
      const { question, options } = asked as { question?: string; options?: Array<{ name: string }> };
      return `${question ?? ""}${options?.length ? ` (${options.map((o) => o.name).join(" / ")})` : ""}`;
    }
  }
  if (value.content_type === "form_schema" && typeof value.content === "string") {
    const fields = parseJson(value.content);
    if (Array.isArray(fields)) {
      return `Fill in: ${fields.map((f) => `${f.name} (${f.type}${f.required ? ", required" : ""})`).join(", ")}`;
    }
  }
  return JSON.stringify(value, null, 2);
}

function describe(event: StreamEvent): { title: string; body: string } {
  const data = event.data as Record<string, unknown>;
  switch (event.event) {
    case "Message":
      return {
        title: `Message from ${String(data.node_title ?? data.node_id ?? "")}${data.node_is_finish ? "" : " (streaming)"}`,
        body: readable(String(data.content ?? "")),
      };
    case "Answer":
      return { title: "You answered", body: readable(String(data.content ?? "")) };
    case "Interrupt": {
      const interrupt = data.interrupt_data as { type?: number } | undefined;
      const kind = interrupt?.type === 5 ? "a form to fill in" : interrupt?.type === 2 ? "a question" : `type ${interrupt?.type}`;
      return { title: `${String(data.node_title ?? "A node")} waits for an answer (${kind})`, body: "" };
    }
    case "Error":
      return { title: "Error", body: String(data.error_message ?? "") };
    case "Done":
      return { title: "Done", body: "" };
    case "PING":
      return { title: "Still running…", body: "" };
    default:
      return { title: event.event, body: JSON.stringify(data) };
  }
}

export function EventLog({ events }: { events: StreamEvent[] }) {
  if (!events.length) return null;
  return (
    <ol className="events" aria-label="Run events" aria-live="polite">
      {events.map((event, index) => {
        const { title, body } = describe(event);
        return (
          <li key={index} className={`event event-${event.event}`} data-event={event.event}>
            <span className="event-name">{event.event}</span>
            <span className="event-title">{title}</span>
            {body && <pre className="event-body">{body}</pre>}
          </li>
        );
      })}
    </ol>
  );
}
