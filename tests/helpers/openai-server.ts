import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

// A scripted stand-in for an OpenAI-compatible server (vLLM, Ollama, api.openai.com), bound to 127.0.0.1.
// Tests decide every answer with a handler, so LLM code paths (retries, repairs, streaming, usage) run
// against real HTTP without any network access or model.

export interface ScriptedRequest {
  /** From the first system message's "ThreadML step: X" line; "" when absent. */
  step: string;
  model: string;
  messages: Array<{ role: string; content: string }>;
  stream: boolean;
  responseFormat: unknown;
  body: Record<string, unknown>;
}

export type ScriptReply =
  | { content: string; usage?: { prompt_tokens: number; completion_tokens: number }; delayMs?: number }
  | { status: number; body?: unknown; headers?: Record<string, string>; delayMs?: number }
  | { hang: true };

export interface ScriptedServer {
  /** e.g. http://127.0.0.1:PORT/v1 */
  baseUrl: string;
  requests: ScriptedRequest[];
  close(): Promise<void>;
}

const STEP_LINE = /^ThreadML step: (.*)$/;

// Message content may be a string or an array of typed parts; tests only care about the text.
function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((part) => (part && typeof part === "object" && "text" in part ? String((part as { text: unknown }).text) : ""))
      .join("");
  }
  return content == null ? "" : JSON.stringify(content);
}

function toScripted(body: Record<string, unknown>): ScriptedRequest {
  const raw = Array.isArray(body.messages) ? (body.messages as Array<Record<string, unknown>>) : [];
  const messages = raw.map((m) => ({ role: String(m.role ?? ""), content: contentText(m.content) }));
  const system = messages.find((m) => m.role === "system" || m.role === "developer");
  const firstLine = system?.content.split(/\r?\n/, 1)[0] ?? "";
  return {
    step: STEP_LINE.exec(firstLine)?.[1].trim() ?? "",
    model: String(body.model ?? ""),
    messages,
    stream: body.stream === true,
    responseFormat: body.response_format,
    body,
  };
}

function sendJson(res: ServerResponse, status: number, payload: unknown, headers: Record<string, string> = {}): void {
  const text = typeof payload === "string" ? payload : JSON.stringify(payload);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

function errorBody(message: string, type: string, code: string | null = null) {
  return { error: { message, type, param: null, code } };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Streams in word-sized pieces (a word with its trailing space), the way real servers send tokens.
function pieces(content: string): string[] {
  return content.match(/\s*\S+\s*|\s+/g) ?? [];
}

/** Starts the server on 127.0.0.1 with an ephemeral port; `handler` answers each chat completion. */
export async function startScriptedOpenAI(
  handler: (req: ScriptedRequest, index: number) => ScriptReply | Promise<ScriptReply>,
): Promise<ScriptedServer> {
  const requests: ScriptedRequest[] = [];
  const sockets = new Set<Socket>();
  let counter = 0;

  async function completions(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(await readBody(req));
      if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("not an object");
      body = parsed as Record<string, unknown>;
    } catch {
      sendJson(res, 400, errorBody("The request body is not a JSON object.", "invalid_request_error"));
      return;
    }
    const scripted = toScripted(body);
    const index = requests.length;
    requests.push(scripted);

    let reply: ScriptReply;
    try {
      reply = await handler(scripted, index);
    } catch (err) {
      sendJson(res, 500, errorBody(`Script handler failed: ${(err as Error).message}`, "server_error"));
      return;
    }
    if ("hang" in reply) return; // the socket stays open until the client gives up or close() runs
    if (reply.delayMs) await sleep(reply.delayMs);
    if (res.destroyed) return;

    if ("status" in reply) {
      sendJson(res, reply.status, reply.body ?? errorBody(`Scripted HTTP ${reply.status}`, "server_error"), reply.headers);
      return;
    }

    const id = `chatcmpl-scripted-${++counter}`;
    const created = Math.floor(Date.now() / 1000);
    const model = scripted.model || "scripted-model";
    const promptChars = scripted.messages.reduce((n, m) => n + m.content.length, 0);
    const promptTokens = reply.usage?.prompt_tokens ?? Math.round(promptChars / 4);
    const completionTokens = reply.usage?.completion_tokens ?? Math.round(reply.content.length / 4);
    const usage = { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };

    if (!scripted.stream) {
      sendJson(res, 200, {
        id,
        object: "chat.completion",
        created,
        model,
        choices: [{ index: 0, message: { role: "assistant", content: reply.content }, logprobs: null, finish_reason: "stop" }],
        usage,
      });
      return;
    }

    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      res.write(`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model, choices, ...extra })}\n\n`);
    chunk([{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }]);
    for (const piece of pieces(reply.content)) {
      chunk([{ index: 0, delta: { content: piece }, logprobs: null, finish_reason: null }]);
    }
    chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }]);
    const streamOptions = body.stream_options as { include_usage?: boolean } | undefined;
    if (streamOptions?.include_usage) chunk([], { usage });
    res.end("data: [DONE]\n\n");
  }

  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0].replace(/\/+$/, "");
    if (req.method === "POST" && path === "/v1/chat/completions") {
      completions(req, res).catch((err: Error) => {
        if (!res.headersSent) sendJson(res, 500, errorBody(err.message, "server_error"));
        else res.destroy();
      });
      return;
    }
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
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        // Hanging and keep-alive connections would keep server.close() waiting forever.
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
