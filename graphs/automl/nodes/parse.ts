import { isClassification, type Requirements } from "../../../src/schema/requirements.js";
import type { DataProfile } from "../agents/types.js";
import { findLeaks } from "../data/leakage.js";
import { readingNotices } from "../agents/llm/reading-check.js";
import { stage, threadIdOf, type GraphDeps } from "../deps.js";
import { parseRequest } from "../request/parse.js";
import { readConversation, readingOf } from "../request/reading.js";
import type { State } from "../state.js";

/** Turns the conversation into validated requirements and checks them against the real data. */
export function parseNode(deps: GraphDeps) {
  return stage<State>(deps, "parse", async (state, config) => {
    const profile = state.profile!;
    let requirements = await deps.agents.prompt.parse({
      conversation: { messages: state.messages, files: state.files, answers: state.answers },
      profile,
    });
    // Where the LLM read the request otherwise than the user's words, the words won: the thread hears it.
    const notices = readingNotices(requirements);
    for (const text of notices) deps.emit(threadIdOf(config), { type: "notice", text });
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

    requirements = await withLeakage(requirements, profile, state.messages, (err) => deps.logger.warn({ err, file: profile.file }, "the leakage check could not read the table"));
    const features = profile.columns.filter((c) => c.name !== requirements.target && c.name !== requirements.labels_column && !requirements.drop_columns.includes(c.name));
    const leaked = requirements.leakage.filter((l) => !l.kept).map((l) => l.column);
    if (leaked.length && features.length === 0)
      return {
        status: "failed",
        error: `Every column of ${profile.name} left to learn from predicts "${requirements.target}" on its own (${leaked.map((c) => `"${c}"`).join(", ")}), so a model would learn nothing real. Send data with other columns, or ask again with "keep ${leaked[0]}" to use it anyway.`,
      };
    // The reading stated back on the plan card: which words became which field (both engines).
    const conversation = { messages: state.messages, files: state.files, answers: state.answers };
    requirements.reading = readingOf(requirements, readConversation(conversation, profile), state.answers);
    return { requirements, baseline, ...(notices.length ? { notices } : {}) };
  });
}

/**
 * Columns the user asked for by name and the engine set aside are used after all; columns that predict
 * the target on its own are left out unless the user keeps them. The same for both engines.
 */
async function withLeakage(req: Requirements, profile: DataProfile, messages: string[], onError: (err: unknown) => void): Promise<Requirements> {
  const kept = keptByUser(messages, profile);
  const dropped = req.drop_columns.filter((c) => !kept.has(c));
  // The profile read this table a moment ago; should a second read fail, the run goes on without the check.
  const leaks = await findLeaks(profile, { ...req, drop_columns: dropped }).catch((err: unknown) => {
    onError(err);
    return [];
  });
  const leakage = leaks.map((l) => ({ column: l.column, reason: l.reason, kept: kept.has(l.column) }));
  const left = leakage.filter((l) => !l.kept).map((l) => l.column);
  return { ...req, drop_columns: [...dropped, ...left], leakage };
}

/** Columns whose last word in the conversation is "keep it" ("keep approved_code", "use X anyway"). */
function keptByUser(messages: string[], profile: DataProfile): Set<string> {
  const columns = profile.columns.map((c) => c.name);
  const last = new Map<string, boolean>();
  for (const message of messages) {
    const parsed = parseRequest(message, columns);
    for (const c of parsed.dropColumns) last.set(c, false);
    for (const c of parsed.keepColumns) last.set(c, true);
  }
  return new Set([...last].filter(([, keep]) => keep).map(([c]) => c));
}
