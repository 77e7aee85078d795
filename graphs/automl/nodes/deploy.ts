import { keepServing, runnerNameOf, stage, threadIdOf, type GraphDeps } from "../deps.js";
import { checkEndpoint } from "../endpoint-check.js";
import type { State } from "../state.js";

/** Starts the model server for the best run and checks it with a real prediction. */
export function deployNode(deps: GraphDeps) {
  return stage<State>(deps, "deploy", async (state, config) => {
    const best = state.best!;
    const runner = deps.runner(runnerNameOf(config, deps, state));
    const threadId = threadIdOf(config);
    // Where the server runs and how to reach it (a remote host, an SSH tunnel) belongs in the report.
    const where: string[] = [];
    const onNotice = (text: string) => {
      where.push(text);
      deps.emit(threadId, { type: "notice", text });
    };
    let server;
    try {
      server = await runner.serve({ runId: best.runId, dir: best.runnerDir, localDir: best.workspace }, { signal: deps.jobSignal(threadId), onNotice });
    } catch (err) {
      return { status: "trained", notices: [`The model is trained but the server did not start: ${(err as Error).message}`] };
    }
    const check = await checkEndpoint(server.url, best.result.sample, server.token);
    const serving = check.ok && keepServing(config);
    if (serving) await deps.keepServer(threadId, server);
    else await server.stop();
    const notices = [...(serving ? where : []), ...(check.ok ? [] : [`The endpoint check failed: ${check.error}`])];
    return {
      endpoint: { url: server.url, ...(server.token ? { token: server.token } : {}), check, serving },
      status: check.ok ? "deployed" : "trained",
      ...(notices.length ? { notices } : {}),
    };
  });
}
