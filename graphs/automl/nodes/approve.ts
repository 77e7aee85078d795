import { interrupt } from "@langchain/langgraph";
import type { GraphDeps } from "../deps.js";
import { ResumeValue, type InterruptPayload, type State, type Update } from "../state.js";

// The same short replies the plan cards offer (a, 1-3, r <text>, c) and their plain-word forms.
const YES = /^(a|y|yes|ok|okay|approve|approved|go|go ahead|lgtm|sure|run it|do it|best)\b/i;
const NO = /^(c|cancel|stop|abort|no|nope|quit)\b/i;
const REVISE = /^r(?:evise)?\s*[:,-]?\s+(.+)$/is;

/** A free-text reply to the plan card, read as a decision. */
export function decisionFromText(text: string, planIds: string[]): ResumeValue {
  const t = text.trim();
  const revise = t.match(REVISE);
  if (revise) return { kind: "revise", feedback: revise[1].trim() };
  const n = t.match(/^(?:plan\s*)?#?(\d)\b/i);
  if (n && planIds[Number(n[1]) - 1]) return { kind: "approve", planId: planIds[Number(n[1]) - 1] };
  if (YES.test(t)) return { kind: "approve", planId: "best" };
  if (NO.test(t)) return { kind: "cancel" };
  return { kind: "revise", feedback: t };
}

// The approval gate. Everything that trains or deploys comes after this node, because a resumed node
// runs again from its top.
export function approveNode(_deps: GraphDeps) {
  return async (state: State): Promise<Update> => {
    const notices = [...new Set(state.plans.flatMap((p) => p.notices))];
    const payload: InterruptPayload = { kind: "approval", plans: state.plans, recommended: "best", notices };
    let decision = ResumeValue.parse(interrupt(payload));
    if (decision.kind === "answer") decision = decisionFromText(decision.text, state.plans.map((p) => p.id));
    switch (decision.kind) {
      case "cancel":
        return { status: "cancelled", route: "finish" };
      case "revise":
        return { feedback: [decision.feedback], route: "plan" };
      case "approve": {
        const planId = decision.planId === "best" || state.plans.some((p) => p.id === decision.planId) ? decision.planId : "best";
        return { approvedPlan: planId, route: "decompose" };
      }
      default:
        return { route: "plan" };
    }
  };
}
