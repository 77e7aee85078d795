import type { IncomingMessage, ServerResponse } from "node:http";
import {
  contentText,
  listenScripted,
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

// A scripted stand-in for an OpenAI-compatible server (vLLM, Ollama, api.openai.com), bound to 127.0.0.1.
// Tests decide every answer with a handler, so LLM code paths (retries, repairs, streaming, usage) run
// against real HTTP without any network access or model.

export type { ScriptReply, ScriptedRequest, ScriptedServer } from "./scripted-http.js";

function errorBody(message: string, type: string, code: string | null = null) {
  return { error: { message, type, param: null, code } };
}

function toScripted(body: Record<string, unknown>): ScriptedRequest {
  const raw = Array.isArray(body.messages) ? (body.messages as Array<Record<string, unknown>>) : [];
  const messages = raw.map((m) => ({ role: String(m.role ?? ""), content: contentText(m.content) }));
  return {
    step: stepOf(messages),
    model: String(body.model ?? ""),
    messages,
    stream: body.stream === true,
    responseFormat: body.response_format,
    body,
  };
}

/** Starts the server on 127.0.0.1 with an ephemeral port; `handler` answers each chat completion. */
export async function startScriptedOpenAI(handler: ScriptHandler): Promise<ScriptedServer> {
  const requests: ScriptedRequest[] = [];
  let counter = 0;

  async function completions(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJsonObject(req);
    if (!body) {
      sendJson(res, 400, errorBody("The request body is not a JSON object.", "invalid_request_error"));
      return;
    }
    const scripted = toScripted(body);
    const answer = await scriptedReply(handler, requests, scripted, res);
    if (!answer) return;
    if ("failed" in answer) {
      sendJson(res, 500, errorBody(answer.failed, "server_error"));
      return;
    }
    const { reply } = answer;
    if ("status" in reply) {
      sendJson(res, reply.status, reply.body ?? errorBody(`Scripted HTTP ${reply.status}`, "server_error"), reply.headers);
      return;
    }

    const id = `chatcmpl-scripted-${++counter}`;
    const created = Math.floor(Date.now() / 1000);
    const model = scripted.model || "scripted-model";
    const { prompt_tokens, completion_tokens } = usageOf(reply, scripted.messages);
    const usage = { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens };

    if (!scripted.stream) {
      const completion = {
        id,
        object: "chat.completion",
        created,
        model,
        choices: [{ index: 0, message: { role: "assistant", content: reply.content }, logprobs: null, finish_reason: reply.finish ?? "stop" }],
        usage,
      };
      sendJson(res, 200, completion, {}, reply.cut);
      return;
    }

    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model, choices, ...extra })}\n\n`;
    const frames = [chunk([{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }])];
    for (const piece of pieces(reply.content)) {
      frames.push(chunk([{ index: 0, delta: { content: piece }, logprobs: null, finish_reason: null }]));
    }
    frames.push(chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: reply.finish ?? "stop" }]));
    const streamOptions = body.stream_options as { include_usage?: boolean } | undefined;
    if (streamOptions?.include_usage) frames.push(chunk([], { usage }));
    frames.push("data: [DONE]\n\n");
    const headers = { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" };
    sendFrames(res, 200, headers, frames, reply.cut);
  }

  const { origin, close } = await listenScripted(
    (req, res, path) => {
      if (req.method === "POST" && path === "/v1/chat/completions") return completions(req, res);
      if (req.method === "GET" && path === "/v1/models") {
        const ids = new Set(["scripted-model", ...requests.map((r) => r.model).filter(Boolean)]);
        sendJson(res, 200, {
          object: "list",
          data: [...ids].map((id) => ({ id, object: "model", created: 0, owned_by: "threadml-tests" })),
        });
        return;
      }
      req.resume();
      sendJson(res, 404, errorBody(`Unknown route: ${req.method} ${req.url}`, "invalid_request_error", "not_found"));
    },
    (res, err) => sendJson(res, 500, errorBody(err.message, "server_error")),
  );

  return { baseUrl: `${origin}/v1`, requests, close };
}
