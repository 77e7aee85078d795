import type { IncomingMessage, ServerResponse } from "node:http";
import {
  contentText,
  listenScripted,
  parseJsonObject,
  pieces,
  readJsonObject,
  scriptedReply,
  sendFrames,
  sendJson,
  stepOf,
  usageOf,
  type ScriptHandler,
  type ScriptedRequest,
  type ScriptedServer,
} from "./scripted-http.js";

// A scripted stand-in for Ollama's native API (POST /api/chat), bound to 127.0.0.1. `baseUrl` is the
// origin with no path, what ChatOllama takes as `baseUrl` (the ollama client appends "/api/chat").
// ChatOllama always sends stream: true, for invoke too; a request without `stream` streams, as in Ollama.

export type { ScriptReply, ScriptedRequest, ScriptedServer } from "./scripted-http.js";

const VERSION = "0.12.6";

function toScripted(body: Record<string, unknown>): ScriptedRequest {
  const raw = Array.isArray(body.messages) ? (body.messages as Array<Record<string, unknown>>) : [];
  const messages = raw.map((m) => ({ role: String(m.role ?? ""), content: contentText(m.content) }));
  return {
    step: stepOf(messages),
    model: String(body.model ?? ""),
    messages,
    stream: body.stream !== false,
    responseFormat: body.format, // a JSON schema object, "json", or undefined
    body,
  };
}

/** The tool a request offers, when it offers any: Ollama has no tool_choice, so the first one is called. */
function offeredTool(body: Record<string, unknown>): string | undefined {
  const tools = Array.isArray(body.tools) ? (body.tools as Array<{ function?: { name?: unknown } }>) : [];
  const name = tools[0]?.function?.name;
  return typeof name === "string" ? name : undefined;
}

/** Starts the server on 127.0.0.1 with an ephemeral port; `handler` answers each chat request. */
export async function startScriptedOllama(handler: ScriptHandler): Promise<ScriptedServer> {
  const requests: ScriptedRequest[] = [];
  const pulled = new Set<string>();

  async function chat(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJsonObject(req);
    if (!body) {
      sendJson(res, 400, { error: "invalid JSON body" });
      return;
    }
    const scripted = toScripted(body);
    const answer = await scriptedReply(handler, requests, scripted, res);
    if (!answer) return;
    if ("failed" in answer) {
      sendJson(res, 500, { error: answer.failed });
      return;
    }
    const { reply } = answer;
    if ("status" in reply) {
      sendJson(res, reply.status, reply.body ?? { error: `scripted HTTP ${reply.status}` }, reply.headers);
      return;
    }

    const model = scripted.model || "scripted-model";
    const createdAt = () => new Date().toISOString();
    const toolName = offeredTool(body);
    const args = toolName ? parseJsonObject(reply.content) : undefined;
    const { prompt_tokens, completion_tokens } = usageOf(reply, scripted.messages);
    const final = {
      done: true,
      done_reason: "stop",
      total_duration: 1_000_000,
      load_duration: 100_000,
      prompt_eval_count: prompt_tokens,
      prompt_eval_duration: 200_000,
      eval_count: completion_tokens,
      eval_duration: 700_000,
    };
    const message = args
      ? { role: "assistant", content: "", tool_calls: [{ function: { name: toolName, arguments: args } }] }
      : { role: "assistant", content: reply.content };

    if (!scripted.stream) {
      sendJson(res, 200, { model, created_at: createdAt(), message, ...final }, {}, reply.cut);
      return;
    }

    // One JSON object a line; only the last (done: true) carries the counts.
    const line = (value: unknown) => `${JSON.stringify(value)}\n`;
    const parts = args ? [message] : pieces(reply.content).map((piece) => ({ role: "assistant", content: piece }));
    const frames = parts.map((m) => line({ model, created_at: createdAt(), message: m, done: false }));
    frames.push(line({ model, created_at: createdAt(), message: { role: "assistant", content: "" }, ...final }));
    sendFrames(res, 200, { "content-type": "application/x-ndjson" }, frames, reply.cut);
  }

  // Any model "pulls" at once, so checkOrPullModel works without a registry.
  async function pull(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = (await readJsonObject(req)) ?? {};
    const name = String(body.model ?? body.name ?? "");
    if (name) pulled.add(name);
    if (body.stream === false) return sendJson(res, 200, { status: "success" });
    const lines = [{ status: "pulling manifest" }, { status: "verifying sha256 digest" }, { status: "success" }];
    sendFrames(res, 200, { "content-type": "application/x-ndjson" }, lines.map((l) => `${JSON.stringify(l)}\n`));
  }

  const { origin, close } = await listenScripted(
    (req, res, path) => {
      if (req.method === "POST" && path === "/api/chat") return chat(req, res);
      if (req.method === "GET" && path === "/api/version") return sendJson(res, 200, { version: VERSION });
      if (req.method === "POST" && path === "/api/pull") return pull(req, res);
      if (req.method === "GET" && path === "/api/tags") {
        // ChatOllama lists models only with checkOrPullModel; a model it then pulls is listed from then on.
        const names = new Set(["scripted-model", ...pulled, ...requests.map((r) => r.model).filter(Boolean)]);
        const models = [...names].map((name) => ({
          name,
          model: name,
          modified_at: new Date(0).toISOString(),
          size: 0,
          digest: "0".repeat(64),
          details: { format: "gguf", family: "scripted", parameter_size: "0B", quantization_level: "Q4_0" },
        }));
        return sendJson(res, 200, { models });
      }
      req.resume();
      sendJson(res, 404, { error: `unknown route: ${req.method} ${req.url}` });
    },
    (res, err) => sendJson(res, 500, { error: err.message }),
  );

  return { baseUrl: origin, requests, close };
}
