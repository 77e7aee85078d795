import { randomUUID } from "node:crypto";
import { createInterface, type Interface } from "node:readline";
import { resolve } from "node:path";
import type { Readable, Writable } from "node:stream";
import type { ChatAdapter, Inbound, MessageRef, Outbound, ThreadRef } from "../types.js";
import { renderFile, renderPlans, renderQuestion, renderReport, renderStatusFull, renderStatusLine, renderTable } from "./render.js";

const HELP = `Type a request, e.g.: Build a model that predicts quality in banana_quality.csv, accuracy at least 0.95
Commands: /data PATH (attach a data file to your next message), /cancel, /undeploy (stop the model server), /help, /quit`;

export interface ShellOptions {
  input?: Readable;
  output?: Writable & { isTTY?: boolean };
  user?: string;
  cwd?: string;
  /** Called on /quit or end of input. */
  onExit?: () => void;
}

/** The terminal as a chat thread: one user, numbered choices, a live progress line. */
export class ShellAdapter implements ChatAdapter {
  readonly platform = "shell";
  private rl: Interface | null = null;
  private readonly out: Writable & { isTTY?: boolean };
  private readonly user: string;
  private readonly cwd: string;
  private readonly thread: ThreadRef = { platform: "shell", channel: "local", thread: "session" };
  private nextId = 1;
  // Event ids must not repeat across restarts: a shared store remembers handled ids for a day.
  private readonly session = randomUUID().slice(0, 8);
  private pendingFiles: string[] = [];
  private last: Outbound | null = null;
  private statusRef: string | null = null;
  private statusShown = "";
  private noticesShown = 0;

  constructor(private readonly options: ShellOptions = {}) {
    this.out = options.output ?? process.stdout;
    this.user = options.user ?? "you";
    this.cwd = options.cwd ?? process.cwd();
  }

  async start(handler: (event: Inbound) => Promise<void>): Promise<void> {
    this.rl = createInterface({ input: this.options.input ?? process.stdin, terminal: false });
    this.print(`ThreadML is ready (offline engine, local runner).\n${HELP}`);
    this.rl.on("line", (line) => {
      const event = this.toEvent(line.trim());
      if (event) void handler(event);
    });
    this.rl.on("close", () => this.options.onExit?.());
  }

  async stop(): Promise<void> {
    this.rl?.close();
    this.rl = null;
  }

  private id(): string {
    return String(this.nextId++);
  }

  private toEvent(line: string): Inbound | null {
    if (!line) return null;
    const base = { eventId: `shell-${this.session}-${this.id()}`, thread: this.thread, user: this.user };
    if (line === "/quit" || line === "/exit") {
      this.options.onExit?.();
      return null;
    }
    if (line === "/help") {
      this.print(HELP);
      return null;
    }
    const data = line.match(/^\/data\s+(.+)$/);
    if (data) {
      const path = resolve(this.cwd, data[1].trim().replace(/^["'`]|["'`]$/g, ""));
      if (this.last?.kind === "question" && this.last.question.slot === "dataset")
        return { ...base, kind: "message", text: path, files: [path], mention: true };
      this.pendingFiles.push(path);
      this.print(`Attached ${path}; it goes with your next message.`);
      return null;
    }
    if (line === "/cancel") return { ...base, kind: "action", action: "cancel", value: "" };
    if (line === "/undeploy") return { ...base, kind: "message", text: "undeploy", files: [], mention: true };
    const n = /^\d+$/.test(line) ? Number(line) : NaN;
    if (this.last?.kind === "question" && n >= 1 && n <= this.last.question.choices.length)
      return { ...base, kind: "action", action: "answer", value: this.last.question.choices[n - 1].value };
    if (this.last?.kind === "plans" && !this.last.decided) {
      if (/^(a|approve)$/i.test(line)) return { ...base, kind: "action", action: "approve", value: "best" };
      if (n >= 1 && n <= this.last.plans.length) return { ...base, kind: "action", action: "approve", value: this.last.plans[n - 1].id };
      const revise = line.match(/^r(?:evise)?\s+(.+)$/i);
      if (revise) return { ...base, kind: "action", action: "revise", value: revise[1] };
      if (/^(c|cancel)$/i.test(line)) return { ...base, kind: "action", action: "cancel", value: "" };
    }
    const files = this.pendingFiles;
    this.pendingFiles = [];
    return { ...base, kind: "message", text: line, files, mention: true };
  }

  async post(_thread: ThreadRef, message: Outbound): Promise<MessageRef> {
    const id = this.id();
    if (message.kind === "status") {
      this.statusRef = id;
      this.noticesShown = 0;
      this.showStatus(message);
    } else {
      this.endStatusLine();
      this.last = message;
      this.print(this.render(message));
    }
    return { thread: this.thread, id };
  }

  async update(ref: MessageRef, message: Outbound): Promise<void> {
    if (message.kind === "status") {
      // A status message posted before a restart is adopted by this process's line.
      if (ref.id !== this.statusRef) {
        this.statusRef = ref.id;
        this.noticesShown = 0;
      }
      return this.showStatus(message);
    }
    if (message.kind === "plans" && message.decided) {
      if (this.last?.kind === "plans") this.last = { ...this.last, decided: message.decided };
      this.print(`Decision: ${message.decided.by} ${message.decided.text}.`);
      return;
    }
    this.print(this.render(message));
  }

  private render(message: Outbound): string {
    switch (message.kind) {
      case "text":
        return message.text;
      case "question":
        return renderQuestion(message.question);
      case "plans":
        return renderPlans(message.plans, message.notices, message.decided, message.reading, message.data);
      case "status":
        return renderStatusFull(message.status);
      case "report":
        return renderReport(message.report, { model: message.model, followUps: message.followUps });
      case "file":
        return renderFile(message.path, message.lines);
      case "table":
        return renderTable(message.title, message.header, message.rows, message.notes);
    }
  }

  private showStatus(message: Extract<Outbound, { kind: "status" }>): void {
    // Notices (a job re-run, the host a job runs on) are news: each is printed once, on its own line.
    const fresh = message.status.notices.slice(this.noticesShown);
    this.noticesShown = message.status.notices.length;
    if (fresh.length) {
      this.endStatusLine();
      this.print(fresh.map((n) => `Note: ${n}`).join("\n"));
    }
    const line = renderStatusLine(message.status);
    if (line === this.statusShown) return;
    this.statusShown = line;
    // On a terminal the line is redrawn in place; in a pipe each change is its own line.
    if (this.out.isTTY) this.out.write(`\r\x1b[2K${line}`);
    else this.out.write(`${line}\n`);
  }

  private endStatusLine(): void {
    if (this.out.isTTY && this.statusShown) this.out.write("\n");
    this.statusShown = "";
  }

  private print(text: string): void {
    this.out.write(`${text}\n`);
  }
}
