import { readFile, writeFile, rename } from "node:fs/promises";
import { z } from "zod";

// Following a remote log by byte offset: only complete lines are handed on, and the offset that is
// saved is the start of the first incomplete line, so a reader resuming from it (after a reconnect
// or a restart of ThreadML) neither skips nor repeats a line.

const MAX_LINE_BYTES = 1_000_000;

export class LineReader {
  private pending: Buffer = Buffer.alloc(0);

  constructor(
    /** Bytes of the file consumed so far (including the pending partial line). */
    public offset: number,
  ) {}

  /** Start of the first line not yet handed on. */
  get committed(): number {
    return this.offset - this.pending.length;
  }

  push(chunk: Buffer): string[] {
    this.offset += chunk.length;
    let data = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const lines: string[] = [];
    let nl: number;
    while ((nl = data.indexOf(0x0a)) >= 0) {
      lines.push(data.subarray(0, nl).toString("utf8").replace(/\r$/, ""));
      data = data.subarray(nl + 1);
    }
    if (data.length > MAX_LINE_BYTES) {
      lines.push(data.toString("utf8"));
      data = Buffer.alloc(0);
    }
    this.pending = Buffer.from(data);
    return lines;
  }

  /** The last line when the file ended without a newline. */
  flush(): string[] {
    if (!this.pending.length) return [];
    const line = this.pending.toString("utf8");
    this.pending = Buffer.alloc(0);
    return [line];
  }
}

/** What survives a restart of ThreadML about a remote job: where it runs and how far its log was read. */
export const FollowState = z.object({
  runner: z.string(),
  dir: z.string(),
  /** The job's start time on the host: an offset belongs to one start of the job. */
  started: z.number().int(),
  offset: z.number().int().min(0),
});
export type FollowState = z.infer<typeof FollowState>;

export async function loadFollowState(file: string): Promise<FollowState | null> {
  try {
    const parsed = FollowState.safeParse(JSON.parse(await readFile(file, "utf8")));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

export async function saveFollowState(file: string, state: FollowState): Promise<void> {
  const tmp = `${file}.tmp`;
  await writeFile(tmp, JSON.stringify(state));
  await rename(tmp, file);
}
