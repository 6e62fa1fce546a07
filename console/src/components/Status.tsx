import { CircleCheck, CircleDashed, CirclePause, CircleX, LoaderCircle } from "lucide-react";

const ICONS = {
  Success: CircleCheck,
  Fail: CircleX,
  Running: LoaderCircle,
  Interrupted: CirclePause,
  Skipped: CircleDashed,
} as const;

const WORDS: Record<string, string> = { Interrupted: "Waiting for an answer" };

export function Status({ status }: { status: string }) {
  const Icon = ICONS[status as keyof typeof ICONS] ?? CircleDashed;
  return (
    <span className={`status status-${status}`} data-status={status}>
      <Icon size={14} aria-hidden className={status === "Running" ? "spin" : undefined} />
      {WORDS[status] ?? status}
    </span>
  );
}
