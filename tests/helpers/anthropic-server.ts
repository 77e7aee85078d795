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

// A scripted stand-in for the Anthropic Messages API (POST /v1/messages), bound to 127.0.0.1.
// `baseUrl` is the server's origin with no path: the @anthropic-ai/sdk client appends "/v1/messages" itself,
// and ChatAnthropic passes `anthropicApiUrl` (or else clientOptions.baseURL) to it as `baseURL`.

export type { ScriptReply, ScriptedRequest, ScriptedServer } from "./scripted-http.js";

// Anthropic's error `type` for each status (https://docs.anthropic.com/en/api/errors).
const ERROR_TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  402: "billing_error",
  403: "permission_error",
  404: "not_found_error",
  413: "request_too_large",
  429: "rate_limit_error",
  500: "api_error",
  504: "timeout_error",
  529: "overloaded_error",
};

function errorBody(status: number, message: string) {
  return { type: "error", error: { type: ERROR_TYPES[status] ?? (status >= 500 ? "api_error" : "invalid_request_error"), message } };
}

function toScripted(body: Record<string, unknown>): ScriptedRequest {
  const raw = Array.isArray(body.messages) ? (body.messages as Array<Record<string, unknown>>) : [];
  const messages = raw.map((m) => ({ role: String(m.role ?? ""), content: contentText(m.content) }));
  // The system prompt is top-level here; as a leading system message `step` parses as on OpenAI's wire.
  if (body.system !== undefined) messages.unshift({ role: "system", content: contentText(body.system) });
  const asked = { tools: body.tools, tool_choice: body.tool_choice, output_config: body.output_config };
  return {
    step: stepOf(messages),
    model: String(body.model ?? ""),
    messages,
    stream: body.stream === true,
    responseFormat: Object.values(asked).some((v) => v !== undefined) ? asked : undefined,
    body,
  };
}

/** The tool a request forces ({type:"tool", name} or {type:"any"}), or undefined when it forces none. */
function forcedTool(body: Record<string, unknown>): string | undefined {
  const tools = Array.isArray(body.tools) ? (body.tools as Array<{ name?: unknown }>) : [];
  const choice = body.tool_choice as { type?: unknown; name?: unknown } | undefined;
  if (!tools.length || !choice) return undefined;
  if (choice.type === "tool" && typeof choice.name === "string") return choice.name;
  if (choice.type === "any" && typeof tools[0].name === "string") return tools[0].name;
  return undefined;
}

type Block = { type: "text"; text: string } | { type: "tool_use"; id: string; name: string; input: Record<string, unknown> };

/** Starts the server on 127.0.0.1 with an ephemeral port; `handler` answers each message request. */
export async function startScriptedAnthropic(handler: ScriptHandler): Promise<ScriptedServer> {
  const requests: ScriptedRequest[] = [];
  let counter = 0;

  async function messagesRoute(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!req.headers["x-api-key"] && !req.headers.authorization) {
      req.resume();
      sendJson(res, 401, errorBody(401, "x-api-key header is required"));
      return;
    }
    const body = await readJsonObject(req);
    if (!body) {
      sendJson(res, 400, errorBody(400, "The request body is not a JSON object."));
      return;
    }
    const scripted = toScripted(body);
    const answer = await scriptedReply(handler, requests, scripted, res);
    if (!answer) return;
    if ("failed" in answer) {
      sendJson(res, 500, errorBody(500, answer.failed));
      return;
    }
    const { reply } = answer;
    const n = ++counter;
    const requestId = { "request-id": `req_scripted_${n}` };
    if ("status" in reply) {
      sendJson(res, reply.status, reply.body ?? errorBody(reply.status, `Scripted HTTP ${reply.status}`), { ...requestId, ...reply.headers });
      return;
    }

    // A forced tool turns the handler's JSON into a tool_use block; text that is no JSON object stays
    // text, like a model that ignored the tool.
    const toolName = forcedTool(body);
    const input = toolName ? parseJsonObject(reply.content) : undefined;
    const block: Block = toolName && input ? { type: "tool_use", id: `toolu_scripted_${n}`, name: toolName, input } : { type: "text", text: reply.content };
    const stopReason = block.type === "tool_use" ? "tool_use" : "end_turn";
    const { prompt_tokens, completion_tokens } = usageOf(reply, scripted.messages);
    const message = {
      id: `msg_scripted_${n}`,
      type: "message",
      role: "assistant",
      model: scripted.model || "scripted-model",
      stop_sequence: null,
    };
    const usage = { input_tokens: prompt_tokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };

    if (!scripted.stream) {
      const full = { ...message, content: [block], stop_reason: stopReason, usage: { ...usage, output_tokens: completion_tokens } };
      sendJson(res, 200, full, requestId, reply.cut);
      return;
    }

    const event = (type: string, data: Record<string, unknown>) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
    // message_start carries output_tokens: 1 and message_delta the cumulative count, as the real API does.
    const frames = [event("message_start", { message: { ...message, content: [], stop_reason: null, usage: { ...usage, output_tokens: 1 } } })];
    if (block.type === "tool_use") {
      frames.push(event("content_block_start", { index: 0, content_block: { ...block, input: {} } }));
      frames.push(event("ping", {}));
      for (const piece of pieces(JSON.stringify(block.input))) {
        frames.push(event("content_block_delta", { index: 0, delta: { type: "input_json_delta", partial_json: piece } }));
      }
    } else {
      frames.push(event("content_block_start", { index: 0, content_block: { type: "text", text: "" } }));
      frames.push(event("ping", {}));
      for (const piece of pieces(block.text)) {
        frames.push(event("content_block_delta", { index: 0, delta: { type: "text_delta", text: piece } }));
      }
    }
    frames.push(event("content_block_stop", { index: 0 }));
    frames.push(event("message_delta", { delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: completion_tokens } }));
    frames.push(event("message_stop", {}));
    const headers = { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive", ...requestId };
    sendFrames(res, 200, headers, frames, reply.cut);
  }

  const { origin, close } = await listenScripted(
    (req, res, path) => {
      if (req.method === "POST" && path === "/v1/messages") return messagesRoute(req, res);
      req.resume();
      sendJson(res, 404, errorBody(404, `Unknown route: ${req.method} ${req.url}`));
    },
    (res, err) => sendJson(res, 500, errorBody(500, err.message)),
  );

  return { baseUrl: origin, requests, close };
}
