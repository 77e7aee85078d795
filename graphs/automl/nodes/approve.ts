import { interrupt } from "@langchain/langgraph";
import { dataCard } from "../data-card.js";
import type { GraphDeps } from "../deps.js";
import { parseRequest } from "../request/parse.js";
import { categoryValues } from "../request/reading.js";
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

/**
 * What a revision says about the reading itself, not only about the plans: a target, a column, a metric,
 * a threshold, a cluster count or a horizon ("the target is Churn", "leave out region", "F1 at least 0.8").
 * Such a revision is read again with the request; one that only names models or styles is re-planned.
 */
export function revisionOfReading(feedback: string, state: Pick<State, "profile">): { reread: boolean; target: string | null } {
  const profile = state.profile;
  const parsed = parseRequest(feedback, profile?.columns.map((c) => c.name), categoryValues(profile));
  // Only a real column counts as a target: parseRequest resolves names against the profile's columns.
  const target = profile && parsed.target && profile.columns.some((c) => c.name === parsed.target) ? parsed.target : null;
  const reread =
    target !== null ||
    parsed.columnMentions.length > 0 ||
    parsed.metric !== null ||
    parsed.constraints.length > 0 ||
    parsed.nClusters !== null ||
    parsed.horizon !== null;
  return { reread, target };
}

// The approval gate. Everything that trains or deploys comes after this node, because a resumed node
// runs again from its top.
export function approveNode(_deps: GraphDeps) {
  return async (state: State): Promise<Update> => {
    const notices = [...new Set(state.plans.flatMap((p) => p.notices))];
    const reading = state.requirements?.reading?.line;
    const data = dataCard(state.profile, state.requirements);
    const payload: InterruptPayload = { kind: "approval", plans: state.plans, recommended: "best", notices, ...(reading ? { reading } : {}), ...(data.length ? { data } : {}) };
    let decision = ResumeValue.parse(interrupt(payload));
    if (decision.kind === "answer") decision = decisionFromText(decision.text, state.plans.map((p) => p.id));
    switch (decision.kind) {
      case "cancel":
        return { status: "cancelled", route: "finish" };
      case "revise": {
        // The planner always gets the feedback (models to prefer or refuse); a revision that changes the
        // reading also goes back to parsing, as one more message, so the next card states the new reading.
        // A named target is kept as the answer to "which column?", which outranks the request's words.
        const revision = revisionOfReading(decision.feedback, state);
        if (!revision.reread) return { feedback: [decision.feedback], route: "plan" };
        return {
          feedback: [decision.feedback],
          messages: [decision.feedback],
          ...(revision.target ? { answers: { target: revision.target } } : {}),
          route: "parse",
        };
      }
      case "approve": {
        const planId = decision.planId === "best" || state.plans.some((p) => p.id === decision.planId) ? decision.planId : "best";
        return { approvedPlan: planId, route: "decompose" };
      }
      default:
        return { route: "plan" };
    }
  };
}
