import type { HarnessResult } from "../../runners/contract.js";
import type { Endpoint } from "./state.js";

/** Equal JSON values, numbers within a relative 1e-6 (floats may print differently across processes). */
export function same(a: unknown, b: unknown): boolean {
  if (typeof a === "number" && typeof b === "number") return Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b));
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => same(x, b[i]));
  if (a && b && typeof a === "object" && typeof b === "object" && !Array.isArray(a) && !Array.isArray(b)) {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    return same(ka, kb) && ka.every((k) => same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The body a client posts for the sample: the variant's own request (images, node ids, a history), or rows. */
export function sampleRequest(sample: NonNullable<HarnessResult["sample"]>): unknown {
  return sample.request ?? { rows: sample.rows };
}

/** A real request to the deployed model: health first, then a prediction on held-out rows. */
export async function checkEndpoint(url: string, sample: HarnessResult["sample"], token?: string): Promise<Endpoint["check"]> {
  const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  try {
    const health = await fetch(`${url}/health`, { headers: auth, signal: AbortSignal.timeout(10_000) });
    if (!health.ok) return { ok: false, prediction: null, error: `GET /health answered ${health.status}` };
    if (!sample || (sample.rows.length === 0 && sample.request === undefined)) return { ok: false, prediction: null, error: "no held-out row to check with" };
    const res = await fetch(`${url}/predict`, {
      method: "POST",
      headers: { "content-type": "application/json", ...auth },
      body: JSON.stringify(sampleRequest(sample)),
      signal: AbortSignal.timeout(30_000),
    });
    const body = (await res.json()) as { predictions?: unknown[]; error?: string };
    if (!res.ok || !Array.isArray(body.predictions)) return { ok: false, prediction: null, error: `POST /predict answered ${res.status}: ${body.error ?? "no predictions"}` };
    return same(body.predictions, sample.predictions)
      ? { ok: true, prediction: body.predictions[0] }
      : { ok: false, prediction: body.predictions[0], error: "the server's predictions differ from the harness's on the same rows" };
  } catch (err) {
    return { ok: false, prediction: null, error: `the endpoint did not answer: ${(err as Error).message}` };
  }
}
