import { STAGES, type ProgressEvent, type Stage } from "../../graphs/automl/deps.js";

export type StageState = "pending" | "running" | "done" | "failed";

/** What a status message shows: the stage checklist, a progress bar and live metrics. */
export interface StatusView {
  stages: Array<{ stage: Stage; state: StageState }>;
  current: Stage | null;
  progress: { label: string; done: number; total: number } | null;
  metrics: Record<string, number>;
  notices: string[];
}

export const STAGE_LABELS: Record<Stage, string> = {
  ingest: "Read the data",
  verify_request: "Check the request",
  parse: "Parse requirements",
  retrieve: "Retrieve knowledge",
  plan: "Plan",
  approve: "Approval",
  decompose: "Decompose plans",
  execute: "Evaluate plans",
  verify_execution: "Verify evaluations",
  select: "Select a model",
  implement: "Write code",
  smoke: "Smoke run",
  train: "Train",
  verify_implementation: "Verify metrics",
  revise: "Revise",
  deploy: "Deploy",
  finish: "Report",
};

/** Folds progress events into a StatusView. */
export class StatusTracker {
  private states = new Map<Stage, StageState>();
  private current: Stage | null = null;
  private progress: StatusView["progress"] = null;
  private metrics: Record<string, number> = {};
  private notices: string[] = [];

  apply(event: ProgressEvent): void {
    switch (event.type) {
      case "stage":
        this.states.set(event.stage, event.state === "start" ? "running" : event.state);
        if (event.state === "start") {
          this.current = event.stage;
          this.progress = null;
          // Metrics belong to one run; a new run starts a fresh set.
          if (event.stage === "smoke" || event.stage === "train") this.metrics = {};
        }
        break;
      case "progress":
        this.progress = { label: event.label ?? event.stage, done: event.done, total: event.total };
        break;
      case "metric":
        this.metrics[event.split ? `${event.split}_${event.name}` : event.name] = event.value;
        break;
      case "notice":
        this.notices.push(event.text);
        break;
      case "plans":
        break;
    }
  }

  view(): StatusView {
    return {
      stages: STAGES.filter((s) => this.states.has(s)).map((stage) => ({ stage, state: this.states.get(stage)! })),
      current: this.current,
      progress: this.progress,
      metrics: { ...this.metrics },
      notices: [...this.notices],
    };
  }
}

/** A text progress bar, e.g. `[######----] 6/10`. */
export function progressBar(done: number, total: number, width = 20): string {
  const ratio = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  const filled = Math.round(ratio * width);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${total}`;
}
