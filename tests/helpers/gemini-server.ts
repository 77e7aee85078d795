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

// A scripted stand-in for the Gemini API (generativelanguage.googleapis.com) as @google/generative-ai
// calls it: POST /v1beta/models/{model}:generateContent, and :streamGenerateContent?alt=sse for streams,
// with the key in the x-goog-api-key header. `baseUrl` is the origin with no path, what
// ChatGoogleGenerativeAI takes as `baseUrl` (the SDK appends "/{apiVersion}/models/...").

export type { ScriptReply, ScriptedRequest, ScriptedServer } from "./scripted-http.js";

const ROUTE = /^\/(v1beta|v1|v1alpha)\/models\/([^/:]+):(generateContent|streamGenerateContent)$/;

// Google's canonical status names for an HTTP status, as the API puts them in error.status.
const STATUS_NAMES: Record<number, string> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  409: "ABORTED",
  429: "RESOURCE_EXHAUSTED",
  499: "CANCELLED",
  500: "INTERNAL",
  503: "UNAVAILABLE",
  504: "DEADLINE_EXCEEDED",
};

function errorBody(code: number, message: string) {
  return { error: { code, message, status: STATUS_NAMES[code] ?? (code >= 500 ? "INTERNAL" : "FAILED_PRECONDITION") } };
}

type Content = { role?: unknown; parts?: unknown };

// Gemini parts: {text} | {functionCall: {name, args}} | {functionResponse: {name, response}} | ...
function partsText(parts: unknown): string {
  if (!Array.isArray(parts)) return contentText(parts);
  return parts
    .map((p: Record<string, unknown>) => {
      if (p && typeof p === "object" && "text" in p) return String(p.text);
      const call = (p?.functionCall ?? p?.functionResponse) as { args?: unknown; response?: unknown } | undefined;
      return call ? JSON.stringify(call.args ?? call.response ?? {}) : "";
    })
    .join("");
}

const ROLES: Record<string, string> = { model: "assistant", function: "tool" };

function toScripted(model: string, stream: boolean, body: Record<string, unknown>): ScriptedRequest {
  const contents = Array.isArray(body.contents) ? (body.contents as Content[]) : [];
  const messages = contents.map((c) => {
    const role = String(c.role ?? "user");
    return { role: ROLES[role] ?? role, content: partsText(c.parts) };
  });
  // systemInstruction is a Content ({role?, parts}) or a bare string; it leads so `step` parses as elsewhere.
  const system = body.systemInstruction as Content | string | undefined;
  if (system !== undefined) messages.unshift({ role: "system", content: typeof system === "string" ? system : partsText(system.parts) });
  const config = (body.generationConfig ?? {}) as Record<string, unknown>;
  const asked = {
    responseMimeType: config.responseMimeType,
    responseSchema: config.responseSchema,
    tools: body.tools,
    toolConfig: body.toolConfig,
  };
  return {
    step: stepOf(messages),
    model,
    messages,
    stream,
    responseFormat: Object.values(asked).some((v) => v !== undefined) ? asked : undefined,
    body,
  };
}

/** The function a request forces (functionCallingConfig mode ANY), or undefined when it forces none. */
function forcedFunction(body: Record<string, unknown>): string | undefined {
  const config = (body.toolConfig as { functionCallingConfig?: { mode?: unknown; allowedFunctionNames?: unknown } } | undefined)?.functionCallingConfig;
  if (config?.mode !== "ANY") return undefined;
  if (Array.isArray(config.allowedFunctionNames) && typeof config.allowedFunctionNames[0] === "string") return config.allowedFunctionNames[0];
  const tools = Array.isArray(body.tools) ? (body.tools as Array<{ functionDeclarations?: Array<{ name?: unknown }> }>) : [];
  const name = tools.flatMap((t) => t.functionDeclarations ?? [])[0]?.name;
  return typeof name === "string" ? name : undefined;
}

/** Starts the server on 127.0.0.1 with an ephemeral port; `handler` answers each generate request. */
export async function startScriptedGemini(handler: ScriptHandler): Promise<ScriptedServer> {
  const requests: ScriptedRequest[] = [];

  async function generate(req: IncomingMessage, res: ServerResponse, model: string, task: string): Promise<void> {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (!req.headers["x-goog-api-key"] && !url.searchParams.get("key")) {
      req.resume();
      sendJson(res, 403, errorBody(403, "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API."));
      return;
    }
    const body = await readJsonObject(req);
    if (!body) {
      sendJson(res, 400, errorBody(400, "Invalid JSON payload received."));
      return;
    }
    const stream = task === "streamGenerateContent";
    const scripted = toScripted(model, stream, body);
    const answer = await scriptedReply(handler, requests, scripted, res);
    if (!answer) return;
    if ("failed" in answer) {
      sendJson(res, 500, errorBody(500, answer.failed));
      return;
    }
    const { reply } = answer;
    if ("status" in reply) {
      sendJson(res, reply.status, reply.body ?? errorBody(reply.status, `Scripted HTTP ${reply.status}`), reply.headers);
      return;
    }

    const name = forcedFunction(body);
    const args = name ? parseJsonObject(reply.content) : undefined;
    const { prompt_tokens, completion_tokens } = usageOf(reply, scripted.messages);
    const usageMetadata = { promptTokenCount: prompt_tokens, candidatesTokenCount: completion_tokens, totalTokenCount: prompt_tokens + completion_tokens };
    const chunk = (parts: unknown[], last: boolean) => ({
      candidates: [{ content: { parts, role: "model" }, index: 0, ...(last ? { finishReason: "STOP" } : {}) }],
      ...(last ? { usageMetadata } : {}),
      modelVersion: model,
    });

    if (!stream) {
      const parts = args ? [{ functionCall: { name, args } }] : [{ text: reply.content }];
      sendJson(res, 200, chunk(parts, true), {}, reply.cut);
      return;
    }

    // The last chunk carries finishReason and the counts.
    const texts = args ? [] : pieces(reply.content);
    const partsList: unknown[][] = args ? [[{ functionCall: { name, args } }]] : (texts.length ? texts : [""]).map((text) => [{ text }]);
    const chunks = partsList.map((parts, i) => chunk(parts, i === partsList.length - 1));
    if (url.searchParams.get("alt") === "sse") {
      const frames = chunks.map((c) => `data: ${JSON.stringify(c)}\r\n\r\n`);
      sendFrames(res, 200, { "content-type": "text/event-stream" }, frames, reply.cut);
    } else {
      // Without alt=sse the API streams one JSON array.
      sendJson(res, 200, chunks, {}, reply.cut);
    }
  }

  const { origin, close } = await listenScripted(
    (req, res, path) => {
      const route = ROUTE.exec(path);
      if (req.method === "POST" && route) return generate(req, res, route[2], route[3]);
      req.resume();
      sendJson(res, 404, errorBody(404, `Unknown route: ${req.method} ${req.url}`));
    },
    (res, err) => sendJson(res, 500, errorBody(500, err.message)),
  );

  return { baseUrl: origin, requests, close };
}
