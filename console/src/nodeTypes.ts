// Coze Studio's node types as a person knows them: a name and an icon per canvas type id. A type not listed
// here (a newer Coze node) is still drawn, with its id and the default icon.
import {
  BookOpen, Box, Braces, Code, Database, FileBraces, Flag, GitBranch, Globe, Image, Layers, type LucideIcon,
  Merge, MessageCircleQuestionMark, MessageSquare, MessagesSquare, OctagonX, PenLine, Play, Puzzle, Repeat,
  SkipForward, Sparkles, StickyNote, Target, TextCursorInput, Type, Variable, Workflow,
} from "lucide-react";

interface NodeKind { label: string; icon: LucideIcon }

const KINDS: Record<string, NodeKind> = {
  "1": { label: "Start", icon: Play },
  "2": { label: "End", icon: Flag },
  "3": { label: "LLM", icon: Sparkles },
  "4": { label: "Plugin", icon: Puzzle },
  "5": { label: "Code", icon: Code },
  "6": { label: "Knowledge retrieval", icon: BookOpen },
  "8": { label: "If", icon: GitBranch },
  "9": { label: "Sub-workflow", icon: Workflow },
  "11": { label: "Variable", icon: Variable },
  "12": { label: "SQL", icon: Database },
  "13": { label: "Output", icon: MessageSquare },
  "14": { label: "Image generation", icon: Image },
  "15": { label: "Text", icon: Type },
  "18": { label: "Question", icon: MessageCircleQuestionMark },
  "19": { label: "Break", icon: OctagonX },
  "20": { label: "Set variable", icon: PenLine },
  "21": { label: "Loop", icon: Repeat },
  "22": { label: "Intent", icon: Target },
  "27": { label: "Knowledge write", icon: BookOpen },
  "28": { label: "Batch", icon: Layers },
  "29": { label: "Continue", icon: SkipForward },
  "30": { label: "Input", icon: TextCursorInput },
  "31": { label: "Comment", icon: StickyNote },
  "32": { label: "Variable aggregator", icon: Merge },
  "37": { label: "Query messages", icon: MessagesSquare },
  "38": { label: "Clear history", icon: MessagesSquare },
  "39": { label: "Create conversation", icon: MessagesSquare },
  "40": { label: "Assign variable", icon: PenLine },
  "42": { label: "Update records", icon: Database },
  "43": { label: "Query records", icon: Database },
  "44": { label: "Delete records", icon: Database },
  "45": { label: "HTTP request", icon: Globe },
  "46": { label: "Insert records", icon: Database },
  "51": { label: "Update conversation", icon: MessagesSquare },
  "52": { label: "Delete conversation", icon: MessagesSquare },
  "53": { label: "List conversations", icon: MessagesSquare },
  "54": { label: "Conversation history", icon: MessagesSquare },
  "55": { label: "Create message", icon: MessagesSquare },
  "56": { label: "Update message", icon: MessagesSquare },
  "57": { label: "Delete message", icon: MessagesSquare },
  "58": { label: "JSON serialize", icon: Braces },
  "59": { label: "JSON deserialize", icon: FileBraces },
  "60": { label: "Knowledge delete", icon: BookOpen },
};

export function nodeKind(type: string): NodeKind {
  return KINDS[type] ?? { label: `Type ${type}`, icon: Box };
}

function names(data: Record<string, unknown>, key: string): string[] {
  const inputs = data.inputs as Record<string, unknown> | undefined;
  const items = inputs?.[key];
  return Array.isArray(items) ? items.map((item) => String((item as { name?: unknown })?.name ?? "")) : [];
}

/** What a branch port means, in words: If's conditions, Intent's intents, a Question's options, errors. */
export function portLabel(type: string, port: string, data: Record<string, unknown>): string {
  if (port === "branch_error") return "Error";
  if (port === "default") return type === "22" || type === "18" ? "Other" : "Default";
  if (port === "true") return "If";
  if (port === "false") return "Else";
  const elseIf = /^true_(\d+)$/.exec(port);
  if (elseIf) return `Else if ${elseIf[1]}`;
  const branch = /^branch_(\d+)$/.exec(port);
  if (branch) {
    const index = Number(branch[1]);
    const label = (type === "22" ? names(data, "intents") : type === "18" ? names(data, "options") : [])[index];
    return label || `Branch ${index + 1}`;
  }
  if (port.endsWith("-function-inline-output")) return "Body";
  if (port.endsWith("-output")) return "Done";
  return port;
}
