import { z } from "zod";
import * as schemas from "../../graphs/automl/agents/llm/schemas.js";
import { mulberry32 } from "../../graphs/automl/holdout.js";
import { wireSchema } from "../../src/llm/json-schema.js";
import { FAMILIES, competent, goodCode, user } from "./scripted-model.js";
import type { ScriptReply, ScriptedRequest } from "./scripted-http.js";

// A poor but well-formed model for the scripted OpenAI server, seeded: it answers with schema-valid
// nonsense built from the JSON Schema the request carries (words it saw in the prompt mixed with junk),
// with sloppy renderings of a sound answer (prose, fences, trailing commas, single quotes, cut short), or
// soundly; code steps get good code, code that raises, code that does not parse, code that builds the
// wrong thing, or prose; and a share of requests fail (5xx, 429, a body cut off mid-answer, a body that
// is not JSON). ThreadML must turn all of it into a deployed model or a clear message.

export type PoorMode = "random" | "sloppy" | "mixed";

export interface PoorOptions {
  seed: number;
  mode: PoorMode;
  /** Share of requests answered with a fault instead (0.1 = 10%). */
  faultRate: number;
}

type Json = Record<string, unknown>;

// The schema of a step, for a request that does not carry one (plain JSON mode).
const STEP_SCHEMAS: Record<string, z.ZodType> = {
  "verify-request": schemas.AssessOutput,
  parse: schemas.ParseOutput,
  knowledge: schemas.KnowledgeOutput,
  plan: schemas.PlanOutput,
  "data-decompose": schemas.DataDecomposeOutput,
  "model-decompose": schemas.ModelDecomposeOutput,
  "verify-execution": schemas.VerifyExecutionOutput,
  select: schemas.SelectOutput,
  "verify-implementation": schemas.VerifyImplementationOutput,
};

const JUNK = ["", "n/a", "TODO", "column_x", "banana", "regression", "classification", "clustering", "accuracy", "rmse", "yes", "0", "-1", "null", "the best one", "plan-9", "plan-1:unknown_family"];

export function poorModel(opts: PoorOptions): (r: ScriptedRequest) => ScriptReply {
  const rand = mulberry32(opts.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];

  function vocabulary(r: ScriptedRequest): string[] {
    const text = user(r);
    const words = new Set<string>(JUNK);
    for (const m of text.matchAll(/"([A-Za-z_][\w .-]{0,30})"/g)) words.add(m[1]);
    for (const m of text.matchAll(/\bplan-\d+(?::[a-z_]+)?/g)) words.add(m[0]);
    for (const f of FAMILIES) words.add(f);
    return [...words];
  }

  function generate(schema: Json, vocab: string[], depth: number): unknown {
    if (Array.isArray(schema.enum)) return pick(schema.enum as unknown[]);
    if (Array.isArray(schema.anyOf)) return generate(pick(schema.anyOf as Json[]), vocab, depth);
    const type = Array.isArray(schema.type) ? pick(schema.type as string[]) : (schema.type as string | undefined);
    switch (type) {
      case "object": {
        const props = (schema.properties ?? {}) as Record<string, Json>;
        const required = new Set((schema.required as string[] | undefined) ?? []);
        const out: Json = {};
        if (!Object.keys(props).length) {
          // An open object (hyperparameter ranges): a few keys with ranges or choices.
          for (let i = Math.floor(rand() * 3); i > 0; i--) out[pick(vocab) || "x"] = rand() < 0.5 ? { low: rand() * 100 - 20, high: rand() * 5 } : { values: [pick(vocab), rand() * 10] };
          return out;
        }
        for (const [key, sub] of Object.entries(props)) if (required.has(key) || rand() < 0.7) out[key] = generate(sub, vocab, depth + 1);
        return out;
      }
      case "array": {
        const min = Number(schema.minItems ?? 0);
        const n = depth > 4 ? min : min + Math.floor(rand() * 3);
        return Array.from({ length: n }, () => generate((schema.items ?? {}) as Json, vocab, depth + 1));
      }
      case "string":
        return pick(vocab);
      case "number":
        return pick([0, 1, -1, 0.5, 0.99, 1e6, rand() * 2 - 0.5]);
      case "integer":
        return pick([0, 1, 2, 3, -1, 50, 1000]);
      case "boolean":
        return rand() < 0.5;
      case "null":
        return null;
      default:
        return pick([pick(vocab), rand(), null, true]);
    }
  }

  function schemaOf(r: ScriptedRequest): Json | null {
    const format = r.body.response_format as { json_schema?: { schema?: Json } } | undefined;
    if (format?.json_schema?.schema) return format.json_schema.schema;
    const known = STEP_SCHEMAS[r.step];
    return known ? (wireSchema(known) as Json) : null;
  }

  function sloppy(content: string): string {
    switch (Math.floor(rand() * 5)) {
      case 0:
        return `Sure! Here is my answer:\n${content}\nLet me know if you need anything else.`;
      case 1:
        return "```json\n" + content + "\n```";
      case 2:
        return content.replace(/([}\]])(?=[}\]]|$)/g, ",$1").replace(/,(?=[}\]]$)/, "");
      case 3:
        return content.replace(/"/g, "'");
      default:
        return content.slice(0, Math.max(1, Math.floor(content.length * (0.3 + rand() * 0.6))));
    }
  }

  function code(r: ScriptedRequest): ScriptReply {
    const good = goodCode(r);
    switch (Math.floor(rand() * 6)) {
      case 0:
        return { content: goodCode(r, '    raise ValueError("the model could not be built")') };
      case 1:
        return { content: good.replace("def build(ctx):", "def build(ctx)") };
      case 2:
        // Builds something other than the chosen estimator.
        return { content: "```python\nfrom sklearn.dummy import DummyClassifier\n\ndef build(ctx):\n    return DummyClassifier()\n```" };
      case 3:
        return { content: "I would use a gradient boosting model with careful tuning." };
      default:
        return { content: good };
    }
  }

  return (r: ScriptedRequest): ScriptReply => {
    if (rand() < opts.faultRate) {
      const sound = competent(r);
      return pick<ScriptReply>([
        { status: 500 },
        { status: 429, headers: { "retry-after-ms": "20" } },
        { status: 200, body: "<html>upstream error</html>" },
        { cut: true, content: "content" in sound ? sound.content : "{}" },
      ]);
    }
    if (r.step === "implement" || r.step === "fix") return code(r);
    const mode = opts.mode === "mixed" ? pick<PoorMode>(["random", "sloppy", "sloppy"]) : opts.mode;
    if (mode === "sloppy" || rand() < 0.2) {
      const sound = competent(r);
      return "content" in sound && rand() < 0.8 ? { content: sloppy(sound.content) } : sound;
    }
    const schema = schemaOf(r);
    if (!schema) return competent(r);
    return { content: JSON.stringify(generate(schema, vocabulary(r), 0)) };
  };
}
