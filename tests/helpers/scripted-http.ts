import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

// What the scripted LLM servers (OpenAI-compatible, Anthropic, Ollama, Gemini) share: the request the
// handler sees, the replies it may give, and the HTTP plumbing. Each server only translates its own wire
// to and from these, so one handler (e.g. scripted-model.ts's `competent`) drives all of them.

export interface ScriptedRequest {
  /** From the first system message's "ThreadML step: X" line; "" when absent. */
  step: string;
  model: string;
  /** The conversation flattened to text; a provider's top-level system prompt comes first as role "system". */
  messages: Array<{ role: string; content: string }>;
  stream: boolean;
  /** What the request asked of the output's shape (provider-specific); undefined when it asked nothing. */
  responseFormat: unknown;
  body: Record<string, unknown>;
}

/** Token counts in OpenAI's names; each server maps them to its provider's fields. */
export interface ScriptUsage {
  prompt_tokens: number;
  completion_tokens: number;
}

export type ScriptReply =
  | {
      content: string;
      usage?: ScriptUsage;
      delayMs?: number;
      /** Starts a 200 answer, sends half of its bytes, then destroys the socket (undici: "terminated"). */
      cut?: true;
      /** Why the answer ended, where the wire says so (OpenAI's finish_reason); "stop" by default. */
      finish?: "stop" | "length" | "content_filter";
    }
  | { status: number; body?: unknown; headers?: Record<string, string>; delayMs?: number }
  | { hang: true };

export type ScriptHandler = (req: ScriptedRequest, index: number) => ScriptReply | Promise<ScriptReply>;

export interface ScriptedServer {
  /** What the provider's client takes as its base URL (see each server). */
  baseUrl: string;
  requests: ScriptedRequest[];
  close(): Promise<void>;
}

export const STEP_LINE = /^ThreadML step: (.*)$/;

// Message content may be a string or an array of typed parts; tests only care about the text. Tool
// exchanges (Anthropic tool_use / tool_result blocks) flatten to their JSON or result text.
export function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map(partText).join("");
  return content == null ? "" : JSON.stringify(content);
}

function partText(part: unknown): string {
  if (!part || typeof part !== "object") return "";
  const p = part as Record<string, unknown>;
  if ("text" in p) return String(p.text);
  if (p.type === "tool_use") return JSON.stringify(p.input ?? {});
  if (p.type === "tool_result") return contentText(p.content);
  return "";
}

/** The step named by the first system (or developer) message's first line. */
export function stepOf(messages: Array<{ role: string; content: string }>): string {
  const system = messages.find((m) => m.role === "system" || m.role === "developer");
  const firstLine = system?.content.split(/\r?\n/, 1)[0] ?? "";
  return STEP_LINE.exec(firstLine)?.[1].trim() ?? "";
}

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** The request body as a JSON object, or undefined when it is not one. */
export async function readJsonObject(req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  return parseJsonObject(await readBody(req));
}

/** A JSON object parsed from text, or undefined (models answer tool calls with JSON text in these scripts). */
export function parseJsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    return parsed && typeof parsed === "object" && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Streams in word-sized pieces (a word with its trailing space), the way real servers send tokens.
export function pieces(content: string): string[] {
  return content.match(/\s*\S+\s*|\s+/g) ?? [];
}

/** The reply's usage, or a rough 4-characters-a-token estimate of prompt and completion. */
export function usageOf(reply: { content: string; usage?: ScriptUsage }, messages: Array<{ content: string }>): ScriptUsage {
  const promptChars = messages.reduce((n, m) => n + m.content.length, 0);
  return {
    prompt_tokens: reply.usage?.prompt_tokens ?? Math.round(promptChars / 4),
    completion_tokens: reply.usage?.completion_tokens ?? Math.round(reply.content.length / 4),
  };
}

/**
 * Writes a whole answer: `frames` are the body's parts (one JSON text, or stream events). With `cut`, only
 * the first half of the bytes goes out before the socket is destroyed, so the client fails mid-body.
 */
export function sendFrames(res: ServerResponse, status: number, headers: Record<string, string | number>, frames: string[], cut = false): void {
  res.writeHead(status, headers);
  if (!cut) {
    for (const frame of frames) res.write(frame);
    res.end();
    return;
  }
  const all = Buffer.from(frames.join(""), "utf8");
  const half = all.subarray(0, Math.max(1, Math.floor(all.length / 2)));
  // Destroy only once the half is handed to the kernel; destroying at once could drop it unsent.
  res.write(half, () => res.destroy());
}

export function sendJson(res: ServerResponse, status: number, payload: unknown, headers: Record<string, string> = {}, cut = false): void {
  const text = typeof payload === "string" ? payload : JSON.stringify(payload);
  // content-length states the whole body even when cut, as a server dying mid-send would have.
  sendFrames(res, status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers }, [text], cut);
}

/** Record the request, ask the handler, and wait out any delay; the caller gets what is left to send. */
export async function scriptedReply(
  handler: ScriptHandler,
  requests: ScriptedRequest[],
  scripted: ScriptedRequest,
  res: ServerResponse,
): Promise<{ reply: Exclude<ScriptReply, { hang: true }> } | { failed: string } | undefined> {
  const index = requests.length;
  requests.push(scripted);
  let reply: ScriptReply;
  try {
    reply = await handler(scripted, index);
  } catch (err) {
    return { failed: `Script handler failed: ${(err as Error).message}` };
  }
  if ("hang" in reply) return undefined; // the socket stays open until the client gives up or close() runs
  if (reply.delayMs) await sleep(reply.delayMs);
  if (res.destroyed) return undefined;
  return { reply };
}

export type Route = (req: IncomingMessage, res: ServerResponse, path: string) => Promise<void> | void;

/**
 * Starts an HTTP server on 127.0.0.1 with an ephemeral port. `route` answers every request; a route that
 * throws gets a 500 from `onError` (or a destroyed socket once the answer has begun).
 */
export async function listenScripted(
  route: Route,
  onError: (res: ServerResponse, err: Error) => void,
): Promise<{ origin: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0].replace(/\/+$/, "");
    Promise.resolve()
      .then(() => route(req, res, path))
      .catch((err: Error) => {
        if (!res.headersSent) onError(res, err);
        else res.destroy();
      });
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
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        // Hanging and keep-alive connections would keep server.close() waiting forever.
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
