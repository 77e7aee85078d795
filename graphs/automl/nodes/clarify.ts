import { interrupt } from "@langchain/langgraph";
import { isAbsolute, resolve } from "node:path";
import { parseRequest } from "../request/parse.js";
import type { GraphDeps } from "../deps.js";
import { ResumeValue, type InterruptPayload, type State, type Update } from "../state.js";

// Slots whose answer is kept by name (the forecast's time column, series column and horizon among them;
// "constraint", "constraint_2", … for numbers the reading could not place).
const ANSWER_SLOTS: string[] = ["target", "labels", "task", "time", "series", "horizon", "runner", "sheet"];

// Asks the first open question and records the answer. interrupt() pauses here; on resume the node
// runs again from the top and interrupt() returns the answer, so nothing before it has side effects.
export function clarifyNode(deps: GraphDeps) {
  return async (state: State): Promise<Update> => {
    const question = state.assessment?.questions[0];
    if (!question) return { route: "ingest" };
    const payload: InterruptPayload = { kind: "question", question };
    const resume = ResumeValue.parse(interrupt(payload));
    if (resume.kind === "cancel") return { status: "cancelled", route: "finish" };
    if (resume.kind !== "answer") return { route: "ingest" };
    const text = resume.text.trim();
    const choice = question.choices.find((c) => c.value.toLowerCase() === text.toLowerCase() || c.label.toLowerCase() === text.toLowerCase());
    // A runner picked by its name says where to train, not what: a runner called "cluster" must not make the task clustering.
    const routing = question.slot === "runner" && choice !== undefined;
    const update: Update = { messages: routing ? [] : [text], files: resume.files, route: "ingest" };
    if (ANSWER_SLOTS.includes(question.slot) || /^constraint(?:_\d+)?$/.test(question.slot)) {
      update.answers = { [question.slot]: choice?.value ?? text.replace(/^[`'"]|[`'"]$/g, "") };
    } else if (question.slot === "dataset" && resume.files.length === 0 && state.localPaths) {
      const found = parseRequest(text).dataPaths;
      const paths = found.length ? found : text.split(/\s+/).length === 1 ? [text] : [];
      if (paths.length) update.files = paths.map((p) => (isAbsolute(p) ? p : resolve(deps.cwd, p)));
    }
    return update;
  };
}
