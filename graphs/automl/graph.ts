import { END, MemorySaver, START, StateGraph, type BaseCheckpointSaver } from "@langchain/langgraph";
import type { GraphDeps } from "./deps.js";
import { approveNode } from "./nodes/approve.js";
import { clarifyNode } from "./nodes/clarify.js";
import { decomposeNode } from "./nodes/decompose.js";
import { deployNode } from "./nodes/deploy.js";
import { executePlansNode } from "./nodes/execute-plans.js";
import { fullRunNode } from "./nodes/full-run.js";
import { implementNode } from "./nodes/implement.js";
import { ingestNode } from "./nodes/ingest.js";
import { parseNode } from "./nodes/parse.js";
import { planNode } from "./nodes/plan.js";
import { reportNode } from "./nodes/report.js";
import { retrieveNode } from "./nodes/retrieve.js";
import { reviseNode } from "./nodes/revise.js";
import { selectNode } from "./nodes/select.js";
import { smokeRunNode } from "./nodes/smoke-run.js";
import { verifyExecutionNode } from "./nodes/verify-execution.js";
import { verifyImplementationNode } from "./nodes/verify-implementation.js";
import { verifyRequestNode } from "./nodes/verify-request.js";
import { AutoMLState, type State } from "./state.js";

const ended = (s: State) => s.status === "failed" || s.status === "cancelled" || s.status === "rejected";
const unless = (next: string) => (s: State) => (ended(s) ? "finish" : next);
const byRoute = (s: State) => (ended(s) ? "finish" : (s.route ?? "finish"));

/**
 * The AutoML graph (AutoML-Agent's pipeline): verify → parse → retrieve → plan → approve → decompose →
 * execute → verify execution → select → implement → smoke → train → verify implementation → deploy →
 * report, with revision loops back to planning and implementation.
 */
export function buildAutoMLGraph(deps: GraphDeps, checkpointer: BaseCheckpointSaver = new MemorySaver()) {
  return new StateGraph(AutoMLState)
    .addNode("ingest", ingestNode(deps))
    .addNode("verify_request", verifyRequestNode(deps))
    .addNode("clarify", clarifyNode(deps))
    .addNode("parse", parseNode(deps))
    .addNode("retrieve", retrieveNode(deps))
    .addNode("plan", planNode(deps))
    .addNode("approve", approveNode(deps))
    .addNode("decompose", decomposeNode(deps))
    .addNode("execute", executePlansNode(deps))
    .addNode("verify_execution", verifyExecutionNode(deps))
    .addNode("select", selectNode(deps))
    .addNode("implement", implementNode(deps))
    .addNode("smoke", smokeRunNode(deps))
    .addNode("train", fullRunNode(deps))
    .addNode("verify", verifyImplementationNode(deps))
    .addNode("revise", reviseNode(deps))
    .addNode("deploy", deployNode(deps))
    .addNode("finish", reportNode(deps))
    .addEdge(START, "ingest")
    .addEdge("ingest", "verify_request")
    .addConditionalEdges("verify_request", byRoute, ["clarify", "parse", "finish"])
    .addConditionalEdges("clarify", (s) => (ended(s) ? "finish" : "ingest"), ["ingest", "finish"])
    .addConditionalEdges("parse", unless("retrieve"), ["retrieve", "finish"])
    .addEdge("retrieve", "plan")
    .addConditionalEdges("plan", unless("approve"), ["approve", "finish"])
    .addConditionalEdges("approve", byRoute, ["decompose", "plan", "finish"])
    .addEdge("decompose", "execute")
    .addConditionalEdges("execute", unless("verify_execution"), ["verify_execution", "finish"])
    .addConditionalEdges("verify_execution", byRoute, ["plan", "select", "finish"])
    .addConditionalEdges("select", unless("implement"), ["implement", "finish"])
    .addEdge("implement", "smoke")
    .addConditionalEdges("smoke", byRoute, ["train", "revise", "finish"])
    .addConditionalEdges("train", byRoute, ["verify", "revise", "finish"])
    .addConditionalEdges("verify", byRoute, ["deploy", "revise"])
    .addConditionalEdges("revise", byRoute, ["smoke", "implement", "deploy", "finish"])
    .addEdge("deploy", "finish")
    .addEdge("finish", END)
    .compile({ checkpointer });
}

export type AutoMLGraph = ReturnType<typeof buildAutoMLGraph>;
