import { allExpanded, collapseAllNested, defaultStyles, JsonView } from "react-json-view-lite";

/** A value as readable JSON: objects and lists as a tree a keyboard can fold, anything else as text. */
export function Json({ value, label, expanded = true }: { value: unknown; label: string; expanded?: boolean }) {
  if (value === null || value === undefined) return <p className="muted">(none)</p>;
  if (typeof value !== "object") {
    return <pre className="json-text" aria-label={label}>{typeof value === "string" ? value : JSON.stringify(value)}</pre>;
  }
  return (
    <div className="json" aria-label={label}>
      <JsonView data={value as object} style={defaultStyles}
        shouldExpandNode={expanded ? allExpanded : collapseAllNested} />
    </div>
  );
}
