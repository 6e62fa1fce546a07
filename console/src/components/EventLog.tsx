// A run's events as they arrive: messages, the question it asks, errors, the end.
import type { StreamEvent } from "../api";

function describe(event: StreamEvent): { title: string; body: string } {
  const data = event.data as Record<string, unknown>;
  switch (event.event) {
    case "Message":
      return {
        title: `Message from ${String(data.node_title ?? data.node_id ?? "")}${data.node_is_finish ? "" : " (streaming)"}`,
        body: String(data.content ?? ""),
      };
    case "Interrupt": {
      const interrupt = data.interrupt_data as { type?: number } | undefined;
      return { title: `${String(data.node_title ?? "A node")} waits for an answer (type ${interrupt?.type ?? "?"})`, body: "" };
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
