import { stage, type GraphDeps } from "../deps.js";
import type { State } from "../state.js";

/** Knowledge for planning from every source in parallel; a source that fails is named and skipped. */
export function retrieveNode(deps: GraphDeps) {
  return stage<State>(deps, "retrieve", async (state) => {
    const req = state.requirements!;
    const terms = [req.problem.application_domain, req.target ?? "", ...req.requested_models].filter(Boolean);
    const { items, unavailable } = await deps.retriever.retrieve({ task: req.task, terms });
    const notices = unavailable.map((u) => `Knowledge source ${u.source} is unavailable (${u.reason}); planning goes on without it.`);
    return { knowledge: items, notices };
  });
}
