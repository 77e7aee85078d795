import type { HarnessResult } from "../../runners/contract.js";
import type { Endpoint } from "./state.js";

const same = (a: unknown, b: unknown): boolean =>
  typeof a === "number" && typeof b === "number" ? Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b)) : JSON.stringify(a) === JSON.stringify(b);

/** A real request to the deployed model: health first, then a prediction on held-out rows. */
export async function checkEndpoint(url: string, sample: HarnessResult["sample"]): Promise<Endpoint["check"]> {
  try {
    const health = await fetch(`${url}/health`, { signal: AbortSignal.timeout(10_000) });
    if (!health.ok) return { ok: false, prediction: null, error: `GET /health answered ${health.status}` };
    if (!sample || sample.rows.length === 0) return { ok: false, prediction: null, error: "no held-out row to check with" };
    const res = await fetch(`${url}/predict`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ rows: sample.rows }),
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await res.json()) as { predictions?: unknown[]; error?: string };
    if (!res.ok || !Array.isArray(body.predictions)) return { ok: false, prediction: null, error: `POST /predict answered ${res.status}: ${body.error ?? "no predictions"}` };
    const agrees = body.predictions.length === sample.predictions.length && body.predictions.every((p, i) => same(p, sample.predictions[i]));
    return agrees
      ? { ok: true, prediction: body.predictions[0] }
      : { ok: false, prediction: body.predictions[0], error: "the server's predictions differ from the harness's on the same rows" };
  } catch (err) {
    return { ok: false, prediction: null, error: `the endpoint did not answer: ${(err as Error).message}` };
  }
}
