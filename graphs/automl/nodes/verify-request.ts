import { stage, type GraphDeps } from "../deps.js";
import type { State } from "../state.js";

/** Relevancy and adequacy: decline, ask, or go on to parsing. */
export function verifyRequestNode(deps: GraphDeps) {
  return stage<State>(deps, "verify", async (state) => {
    const assessment = await deps.agents.manager.assess({
      conversation: { messages: state.messages, files: state.files, answers: state.answers },
      profile: state.profile,
    });
    if (assessment.declineReason) return { assessment, status: "rejected", error: assessment.declineReason, route: "finish" };
    if (state.dataError) return { assessment, status: "failed", error: state.dataError, route: "finish" };
    const route = assessment.questions.length ? "clarify" : "parse";
    return { assessment, route, questions: assessment.questions.map((q) => q.text), notices: assessment.notes };
  });
}
