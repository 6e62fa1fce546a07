// Answering a run that waits: a Question's options as buttons (or a free answer), an Input node's form.
import { useId, useState, type FormEvent } from "react";
import { parseJson } from "../params";

export interface Question {
  event_id: string;
  interrupt_type: number;
  node_title: string;
  data: unknown;
}

const QUESTION = 2;
const INPUT = 5;

/** JSON text as its value; anything else (text that is not JSON, a value already) as it is. */
function parse(value: unknown): unknown {
  const parsed = parseJson(value);
  return parsed === undefined ? value : parsed;
}

interface AskedQuestion { text: string; options: string[] }

function openQuestion(data: unknown): AskedQuestion {
  const messages = (parse(data) as { messages?: Array<{ type: string; content: unknown }> })?.messages ?? [];
  const asked = [...messages].reverse().find((message) => message.type === "question");
  const content = parse(asked?.content);
  if (content && typeof content === "object") {
    const { question, options } = content as { question?: string; options?: Array<{ name: string }> };
    return { text: question ?? "", options: (options ?? []).map((option) => option.name) };
  }
  return { text: typeof content === "string" ? content : "", options: [] };
}

interface Field { name: string; type: string; required?: boolean; description?: string }

function formFields(data: unknown): Field[] {
  const content = parse((parse(data) as { content?: unknown })?.content);
  return Array.isArray(content) ? (content as Field[]).filter((field) => field?.name) : [];
}

function typed(field: Field, raw: string): unknown {
  if (raw === "") return null;
  if (field.type === "integer" || field.type === "float" || field.type === "number") return Number(raw);
  if (field.type === "boolean") return raw === "true";
  if (field.type === "object" || field.type === "list") return parse(raw);
  return raw;
}

export function Answer({ question, onAnswer, busy }: {
  question: Question;
  onAnswer: (resumeData: string) => void;
  busy: boolean;
}) {
  const id = useId();
  const [text, setText] = useState("");
  const [values, setValues] = useState<Record<string, string>>({});
  if (question.interrupt_type === INPUT) {
    const fields = formFields(question.data);
    const submit = (event: FormEvent) => {
      event.preventDefault();
      onAnswer(JSON.stringify(Object.fromEntries(fields.map((f) => [f.name, typed(f, values[f.name] ?? "")]))));
    };
    return (
      <form className="answer" onSubmit={submit} aria-label={`Answer ${question.node_title}`}>
        <p className="asked"><strong>{question.node_title}</strong> asks you to fill in:</p>
        {fields.map((field) => (
          <div className="field" key={field.name}>
            <label htmlFor={`${id}-${field.name}`}>{field.name} <span className="muted">({field.type})</span>
              {field.required && <span aria-hidden> *</span>}</label>
            <input id={`${id}-${field.name}`} required={field.required} value={values[field.name] ?? ""}
              onChange={(event) => setValues({ ...values, [field.name]: event.target.value })} />
            {field.description && <small>{field.description}</small>}
          </div>
        ))}
        <button type="submit" disabled={busy}>Send</button>
      </form>
    );
  }
  const asked = openQuestion(question.data);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (text.trim()) onAnswer(text);
  };
  return (
    <div className="answer" role="group" aria-label={`Answer ${question.node_title}`}>
      <p className="asked"><strong>{question.node_title}</strong> asks: {asked.text}</p>
      {asked.options.length > 0 && (
        <div className="options">
          {asked.options.map((option) => (
            <button type="button" key={option} onClick={() => onAnswer(option)} disabled={busy}>{option}</button>
          ))}
        </div>
      )}
      {question.interrupt_type === QUESTION && (
        <form onSubmit={submit} className="inline">
          <label htmlFor={`${id}-answer`}>{asked.options.length ? "Or answer in your own words" : "Your answer"}</label>
          <input id={`${id}-answer`} value={text} onChange={(event) => setText(event.target.value)} />
          <button type="submit" disabled={busy || !text.trim()}>Answer</button>
        </form>
      )}
    </div>
  );
}
