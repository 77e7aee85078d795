import { END, MemorySaver, START, StateGraph, type BaseCheckpointSaver } from "@langchain/langgraph";
import type { GraphDeps } from "./deps.js";
import { approveNode } from "./nodes/approve.js";
import { clarifyNode } from "./nodes/clarify.js";
import { decomposeNode } from "./nodes/decompose.js";
import { deployNode } from "./nodes/deploy.js";
import { executeNode } from "./nodes/execute.js";
import { implementNode } from "./nodes/implement.js";
import { ingestNode } from "./nodes/ingest.js";
import { parseNode } from "./nodes/parse.js";
import { planNode } from "./nodes/plan.js";
import { finishNode } from "./nodes/finish.js";
import { retrieveNode } from "./nodes/retrieve.js";
import { reviseNode } from "./nodes/revise.js";
import { selectNode } from "./nodes/select.js";
import { smokeNode } from "./nodes/smoke.js";
import { trainNode } from "./nodes/train.js";
import { verifyExecutionNode } from "./nodes/verify-execution.js";
import { verifyImplementationNode } from "./nodes/verify-implementation.js";
import { verifyRequestNode } from "./nodes/verify-request.js";
import { AutoMLState, type State } from "./state.js";

const ended = (s: State) => s.status === "failed" || s.status === "cancelled" || s.status === "rejected";
const unless = (next: string) => (s: State) => (ended(s) ? "finish" : next);
const byRoute = (s: State) => (ended(s) ? "finish" : (s.route ?? "finish"));
// Every edge out of a step that can fail goes to finish when it did: no step reads what a failed one
// left empty (docs/llm.md §3).

/**
 * The AutoML graph (AutoML-Agent's pipeline): ingest → verify_request → parse → retrieve → plan → approve →
 * decompose → execute → verify_execution → select → implement → smoke → train → verify_implementation →
 * deploy → finish, with revision loops back to parsing (a revision that changes the reading), planning and
 * implementation. Each node id is also its
 * stage name and, in kebab case, its file under nodes/. The last step is `finish`, not `report`, because
 * LangGraph refuses a node named like a state channel.
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
    .addNode("execute", executeNode(deps))
    .addNode("verify_execution", verifyExecutionNode(deps))
    .addNode("select", selectNode(deps))
    .addNode("implement", implementNode(deps))
    .addNode("smoke", smokeNode(deps))
    .addNode("train", trainNode(deps))
    .addNode("verify_implementation", verifyImplementationNode(deps))
    .addNode("revise", reviseNode(deps))
    .addNode("deploy", deployNode(deps))
    .addNode("finish", finishNode(deps))
    .addEdge(START, "ingest")
    .addConditionalEdges("ingest", unless("verify_request"), ["verify_request", "finish"])
    .addConditionalEdges("verify_request", byRoute, ["clarify", "parse", "finish"])
    .addConditionalEdges("clarify", (s) => (ended(s) ? "finish" : "ingest"), ["ingest", "finish"])
    .addConditionalEdges("parse", unless("retrieve"), ["retrieve", "finish"])
    .addConditionalEdges("retrieve", unless("plan"), ["plan", "finish"])
    .addConditionalEdges("plan", unless("approve"), ["approve", "finish"])
    .addConditionalEdges("approve", byRoute, ["decompose", "parse", "plan", "finish"])
    .addConditionalEdges("decompose", unless("execute"), ["execute", "finish"])
    .addConditionalEdges("execute", unless("verify_execution"), ["verify_execution", "finish"])
    .addConditionalEdges("verify_execution", byRoute, ["plan", "select", "finish"])
    .addConditionalEdges("select", unless("implement"), ["implement", "finish"])
    .addConditionalEdges("implement", unless("smoke"), ["smoke", "finish"])
    .addConditionalEdges("smoke", byRoute, ["train", "revise", "finish"])
    .addConditionalEdges("train", byRoute, ["verify_implementation", "revise", "finish"])
    .addConditionalEdges("verify_implementation", byRoute, ["deploy", "revise", "finish"])
    .addConditionalEdges("revise", byRoute, ["smoke", "implement", "deploy", "finish"])
    .addEdge("deploy", "finish")
    .addEdge("finish", END)
    .compile({ checkpointer });
}

export type AutoMLGraph = ReturnType<typeof buildAutoMLGraph>;
