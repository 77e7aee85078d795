import type { LangGraphRunnableConfig } from "@langchain/langgraph";
import type { Question } from "../agents/types.js";
import { runnerNames, stage, type GraphDeps } from "../deps.js";
import { sheetNamedIn, sheetQuestion } from "../data/read/sheets.js";
import type { State } from "../state.js";

/** Relevancy and adequacy: decline, ask, or go on to parsing. */
export function verifyRequestNode(deps: GraphDeps) {
  return stage<State>(deps, "verify_request", async (state, config) => {
    const assessment = await deps.agents.manager.assess({
      conversation: { messages: state.messages, files: state.files, answers: state.answers },
      profile: state.profile,
    });
    if (assessment.declineReason) return { assessment, status: "rejected", error: assessment.declineReason, route: "finish" };
    if (state.dataError) return { assessment, status: "failed", error: state.dataError, route: "finish" };
    // the other questions (which column to predict) are about the sheet read: which one comes first
    const sheet = chooseSheet(state);
    if (sheet) assessment.questions.unshift(sheet);
    const runner = chooseRunner(deps, state, config);
    if (runner.question && !assessment.questions.length) assessment.questions.push(runner.question);
    const route = assessment.questions.length ? "clarify" : "parse";
    return {
      assessment,
      route,
      questions: assessment.questions.map((q) => q.text),
      notices: assessment.notes,
      ...(runner.named ? { answers: { runner: runner.named } } : {}),
    };
  });
}

/** A workbook with several sheets holding tables, none named in the request or chosen: which one? */
function chooseSheet(state: State): Question | null {
  const source = state.profile?.source;
  if (!source || source.sheets.length < 2 || sheetNamedIn(state.messages.join("\n"), source.sheets)) return null;
  return sheetQuestion(source.sheets, source.sheet, state.answers.sheet, state.profile!.name);
}

/**
 * With several runners configured and none chosen (no `--runner`, none named in the request), the user
 * picks where to train, the default first. A configured runner named in the request is taken as chosen.
 */
function chooseRunner(deps: GraphDeps, state: State, config: LangGraphRunnableConfig): { named?: string; question?: Question } {
  const names = runnerNames(deps);
  const given = config.configurable?.runner;
  if (names.length < 2 || (typeof given === "string" && given) || state.answers.runner) return {};
  const said = state.messages.join("\n");
  const escape = (n: string) => n.replace(/[-]/g, "\\-");
  // "local" is an everyday word; only the configured names count when written in the request.
  const named = Object.keys(deps.config.runners).find((n) => new RegExp(`(^|[^\\w-])${escape(n)}($|[^\\w-])`, "i").test(said));
  if (named) return { named };
  const describe = (n: string) => {
    const rc = deps.config.runners[n];
    if (rc?.kind === "ssh") return `${n} (${rc.user}@${rc.host})`;
    if (rc?.kind === "slurm") return `${n} (Slurm${rc.host ? ` via ${rc.user}@${rc.host}` : ""}${rc.partition ? `, partition ${rc.partition}` : ""})`;
    return n === "local" ? "local (this machine)" : n;
  };
  return {
    question: {
      slot: "runner",
      text: "Where should I train this model?",
      choices: names.map((n) => ({ label: n === deps.config.defaultRunner ? `${describe(n)}, the default` : describe(n), value: n })),
      allowFreeText: false,
    },
  };
}
