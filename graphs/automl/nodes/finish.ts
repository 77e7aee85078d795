import { rm, writeFile } from "node:fs/promises";
import { stage, type GraphDeps } from "../deps.js";
import { buildReport, renderMarkdown } from "../report.js";
import type { State } from "../state.js";

/** The final report: metrics versus constraints, endpoint, artifacts; also written as report.md. */
export function finishNode(deps: GraphDeps) {
  return stage<State>(deps, "finish", async (state) => {
    const report = buildReport(state, deps.config.llm.pricing);
    if (report.artifacts.report) {
      try {
        // The report lives in the host-owned artifacts folder; a fresh file, never through an existing name.
        await rm(report.artifacts.report, { force: true });
        await writeFile(report.artifacts.report, renderMarkdown(report, state), { flag: "wx" });
      } catch (err) {
        deps.logger.warn({ err }, "could not write report.md");
        report.artifacts.report = null;
      }
    }
    return { report, status: report.status };
  });
}
