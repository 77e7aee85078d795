import { isClassification } from "../../../src/schema/requirements.js";
import { stage, type GraphDeps } from "../deps.js";
import { ReadingQuestion, readConversation, readingOf } from "../request/reading.js";
import type { State } from "../state.js";

/** Turns the conversation into validated requirements and checks them against the real data. */
export function parseNode(deps: GraphDeps) {
  return stage<State>(deps, "parse", async (state) => {
    const profile = state.profile!;
    let requirements;
    try {
      requirements = await deps.agents.prompt.parse({
        conversation: { messages: state.messages, files: state.files, answers: state.answers },
        profile,
      });
    } catch (err) {
      // The reading needs the user (the LLM keeps naming another target than their words): ask, then parse again.
      if (!(err instanceof ReadingQuestion)) throw err;
      const assessment = { relevant: true, declineReason: null, questions: [err.question], notes: [] };
      return { assessment, questions: [err.question.text], route: "clarify" };
    }
    // The reading stated back on the plan card: which words became which field (both engines).
    const conversation = { messages: state.messages, files: state.files, answers: state.answers };
    requirements.reading = readingOf(requirements, readConversation(conversation, profile), state.answers);
    const target = requirements.target ? profile.columns.find((c) => c.name === requirements.target) : undefined;
    let baseline: number | null = null;
    if (isClassification(requirements.task) && target) {
      const present = profile.rows - target.missing;
      if (target.unique < 2)
        return {
          status: "failed",
          error: `The target "${target.name}" has a single value (${target.examples[0] ?? "empty"}) in every row, so there is nothing to classify. Choose another column or add rows of the other classes.`,
        };
      baseline = present > 0 ? Math.max(...target.top.map((t) => t.count)) / present : null;
    }
    if (requirements.task === "regression" && target && target.kind !== "numeric")
      return { status: "failed", error: `The target "${target.name}" is not numeric, so it cannot be regressed. Ask for classification instead.` };
    if (requirements.task === "time_series_forecasting" && target && target.kind !== "numeric")
      return { status: "failed", error: `The target "${target.name}" is not numeric, so it cannot be forecast. Name a column of numbers to forecast.` };
    if (requirements.task === "regression" && target && target.unique < 2)
      return { status: "failed", error: `The target "${target.name}" has the same value in every row; there is nothing to predict.` };
    if (requirements.task === "clustering" && requirements.n_clusters !== null && requirements.n_clusters >= profile.rows)
      return { status: "failed", error: `${requirements.n_clusters} clusters need more than ${profile.rows} rows.` };
    return { requirements, baseline };
  });
}
