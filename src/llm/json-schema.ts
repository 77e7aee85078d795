import { z } from "zod";

// The JSON Schema a structured call sends, derived from the zod schema that validates the answer.
// Providers accept different subsets: OpenAI's strict mode wants every object closed and every property
// required; Gemini takes an OpenAPI subset (no type lists, `nullable` instead). Validation stays with
// the zod schema either way: the wire schema only steers the model.

export type JsonSchema = Record<string, unknown>;

/**
 * Element schemas of lenient lists. A list the agents check element by element is validated as
 * unknown[] (one bad element must not sink the answer), but the model should still be told the
 * element's shape.
 */
const elements = new WeakMap<object, z.ZodType>();

/** A list validated loosely (bad elements are dropped in code) whose wire schema names `element`. */
export function looseList(element: z.ZodType): z.ZodType<unknown[]> {
  const schema = z.array(z.unknown()).catch([]);
  elements.set(schema, element);
  return schema;
}

const cache = new WeakMap<z.ZodType, JsonSchema>();

/** The JSON Schema of what the model should answer (input side of the zod schema, lenient lists filled in). */
export function wireSchema(schema: z.ZodType): JsonSchema {
  const hit = cache.get(schema);
  if (hit) return hit;
  const out = z.toJSONSchema(schema, {
    target: "draft-7",
    io: "input",
    unrepresentable: "any",
    override(ctx) {
      const element = elements.get(ctx.zodSchema);
      if (element) {
        const items = wireSchema(element);
        for (const key of Object.keys(ctx.jsonSchema)) delete (ctx.jsonSchema as JsonSchema)[key];
        Object.assign(ctx.jsonSchema, { type: "array", items });
      }
    },
  }) as JsonSchema;
  delete out.$schema;
  cache.set(schema, out);
  return out;
}

// Keywords OpenAI's strict mode does not take (it rejects the request); dropped from the strict copy.
const STRICT_DROPPED = new Set(["default", "$schema", "propertyNames", "minLength", "maxLength", "format", "pattern"]);

/**
 * The schema in OpenAI's strict form, or null when the schema cannot be made strict without changing
 * what it accepts: an open object (a record), an optional property, or an element of any shape.
 */
export function strictSchema(schema: JsonSchema): JsonSchema | null {
  // `properties` maps names to schemas: its keys are property names, never keywords to drop.
  const walkMap = (map: unknown): unknown =>
    map && typeof map === "object" ? Object.fromEntries(Object.entries(map as JsonSchema).map(([name, sub]) => [name, walk(sub)])) : map;
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (!node || typeof node !== "object") return node;
    const n = node as JsonSchema;
    if (Object.keys(n).filter((k) => !STRICT_DROPPED.has(k) && k !== "description").length === 0) throw NOT_STRICT;
    const out: JsonSchema = {};
    for (const [k, v] of Object.entries(n)) {
      if (STRICT_DROPPED.has(k)) continue;
      out[k] = k === "enum" || k === "const" || k === "required" ? v : k === "properties" || k === "definitions" || k === "$defs" ? walkMap(v) : walk(v);
    }
    if (n.type === "object" || n.properties) {
      if (n.additionalProperties !== undefined && n.additionalProperties !== false) throw NOT_STRICT;
      const props = Object.keys((n.properties as JsonSchema | undefined) ?? {});
      const required = (n.required as string[] | undefined) ?? [];
      if (props.length === 0 || props.some((p) => !required.includes(p))) throw NOT_STRICT;
      out.additionalProperties = false;
    }
    return out;
  };
  try {
    return walk(schema) as JsonSchema;
  } catch (err) {
    if (err === NOT_STRICT) return null;
    throw err;
  }
}
const NOT_STRICT = Symbol("not strict");

// Gemini's response schema is an OpenAPI 3.0 subset.
const GEMINI_KEPT = new Set(["type", "format", "description", "nullable", "enum", "items", "properties", "required", "minItems", "maxItems", "minimum", "maximum", "anyOf"]);

/**
 * The schema in the subset Gemini's responseSchema accepts. An object without properties (a record of
 * hyperparameter ranges) is not allowed there, so such a property is left out of what Gemini is shown;
 * the zod schema still accepts it when the model gives it.
 */
export function geminiSchema(schema: JsonSchema): JsonSchema {
  const open = (s: JsonSchema) => s.type === "object" && !Object.keys((s.properties as JsonSchema | undefined) ?? {}).length;
  const walk = (node: unknown): JsonSchema => {
    if (!node || typeof node !== "object" || Array.isArray(node)) return { type: "string" };
    const n = { ...(node as JsonSchema) };
    if ("const" in n && !n.enum) n.enum = [n.const];
    // ["string", "number", "null"] → the first type, nullable; a null branch of anyOf → nullable.
    if (Array.isArray(n.type)) {
      const types = n.type as string[];
      if (types.includes("null")) n.nullable = true;
      n.type = types.find((t) => t !== "null") ?? "string";
    }
    if (Array.isArray(n.anyOf)) {
      const branches = (n.anyOf as JsonSchema[]).filter((b) => b?.type !== "null");
      if (branches.length < (n.anyOf as unknown[]).length) n.nullable = true;
      if (branches.length === 1) {
        delete n.anyOf;
        Object.assign(n, { ...branches[0], ...(n.nullable ? { nullable: true } : {}) });
      } else n.anyOf = branches;
    }
    const out: JsonSchema = {};
    for (const [k, v] of Object.entries(n)) {
      if (!GEMINI_KEPT.has(k)) continue;
      if (k === "properties") {
        const kept = Object.entries(v as JsonSchema).map(([p, s]) => [p, walk(s)] as const).filter(([, s]) => !open(s));
        out[k] = Object.fromEntries(kept);
        if (Array.isArray(n.required)) out.required = (n.required as string[]).filter((p) => kept.some(([name]) => name === p));
      } else if (k === "required") continue;
      else if (k === "items") out[k] = walk(v);
      else if (k === "anyOf") out[k] = (v as unknown[]).map(walk);
      else out[k] = v;
    }
    if (!out.type && !out.anyOf) out.type = out.properties ? "object" : "string";
    return out;
  };
  return walk(schema);
}
