import { rm, writeFile } from "node:fs/promises";
import { bundleNotice, writeBundle } from "../bundle.js";
import { stage, type GraphDeps } from "../deps.js";
import { buildReport, renderMarkdown } from "../report.js";
import type { State } from "../state.js";

/** The final report: metrics versus constraints, endpoint, artifacts and the portable bundle; also written as report.md. */
export function finishNode(deps: GraphDeps) {
  return stage<State>(deps, "finish", async (state) => {
    const report = buildReport(state, deps.config.llm.pricing);
    report.artifacts.bundle = null;
    const notices: string[] = [];
    if (state.best?.artifacts?.model) {
      try {
        report.artifacts.bundle = await writeBundle(state, report);
      } catch (err) {
        // A bundle is a convenience: the conversation, its model and report stand without it.
        deps.logger.warn({ err }, "could not build the model bundle");
        const notice = bundleNotice(err);
        report.notices.push(notice);
        notices.push(notice);
      }
    }
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
    return { report, status: report.status, ...(notices.length ? { notices } : {}) };
  });
}
