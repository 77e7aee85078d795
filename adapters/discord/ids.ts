import { z } from "zod";
import { FOLLOW_UP_ACTIONS, type FollowUpAction } from "../types.js";
import { LIMITS } from "./limits.js";

// Custom ids of the components and modals the adapter renders. A choice carries its value (`=value`) so a
// card still works after a restart; a value too long for Discord's 100 characters is sent as its index
// (`#3`) and resolved from the card this process posted.

export type Ref = { value: string } | { index: number };

export type Control =
  | { kind: "answer"; ref: Ref }
  | { kind: "approve"; ref: Ref }
  | { kind: "pick" }
  | { kind: "free" }
  | { kind: "revise" }
  | { kind: "cancel" }
  | { kind: "stop" }
  /** A report's follow-up button; it stays usable as long as the report is there. */
  | { kind: "followup"; action: FollowUpAction }
  | { kind: "modal"; purpose: "answer" | "revise" };

export const ids = {
  pick: "tml:pick",
  free: "tml:free",
  revise: "tml:revise",
  cancel: "tml:cancel",
  stop: "tml:stop",
  modal: (purpose: "answer" | "revise") => `tml:modal:${purpose}`,
  followup: (action: FollowUpAction) => `tml:followup:${action}`,
  /** The text input inside both modals. */
  text: "text",
};

/**
 * Ids for a list of choices (`answer`, `approve`) or select options (`""`): the value itself where it fits
 * and is not taken, else the index; ids within one message must be unique.
 */
export function choiceIds(kind: "answer" | "approve" | "", values: string[], max: number = LIMITS.customId): string[] {
  const prefix = kind ? `tml:${kind}` : "";
  const taken = new Set<string>();
  return values.map((value, i) => {
    const byValue = `${prefix}=${value}`;
    const id = byValue.length <= max && !taken.has(byValue) ? byValue : `${prefix}#${i}`;
    taken.add(id);
    return id;
  });
}

const Index = z.string().regex(/^\d{1,2}$/).transform(Number).pipe(z.number().max(24));

/** `=value` or `#index`, as choiceIds writes them. */
export function parseRef(raw: string): Ref | null {
  if (raw.startsWith("=")) return { value: raw.slice(1) };
  if (raw.startsWith("#")) {
    const index = Index.safeParse(raw.slice(1));
    return index.success ? { index: index.data } : null;
  }
  return null;
}

const Shape = z.string().min(5).max(LIMITS.customId).startsWith("tml:");
const FIXED: Record<string, Control> = {
  "tml:pick": { kind: "pick" },
  "tml:free": { kind: "free" },
  "tml:revise": { kind: "revise" },
  "tml:cancel": { kind: "cancel" },
  "tml:stop": { kind: "stop" },
  "tml:modal:answer": { kind: "modal", purpose: "answer" },
  "tml:modal:revise": { kind: "modal", purpose: "revise" },
  ...Object.fromEntries(FOLLOW_UP_ACTIONS.map((action) => [ids.followup(action), { kind: "followup", action } as Control])),
};

/** The control a custom id names, or null when it is not one of ours (or malformed). */
export function parseCustomId(raw: unknown): Control | null {
  const parsed = Shape.safeParse(raw);
  if (!parsed.success) return null;
  const id = parsed.data;
  if (FIXED[id]) return FIXED[id];
  for (const kind of ["answer", "approve"] as const) {
    if (!id.startsWith(`tml:${kind}`)) continue;
    const ref = parseRef(id.slice(`tml:${kind}`.length));
    return ref && !("value" in ref && !ref.value) ? { kind, ref } : null;
  }
  return null;
}

/** The option a select menu sent: exactly one, as choiceIds wrote it. */
export function parsePicked(values: unknown): Ref | null {
  const parsed = z.tuple([z.string().max(LIMITS.selectOptionValue)]).safeParse(values);
  return parsed.success ? parseRef(parsed.data[0]) : null;
}
