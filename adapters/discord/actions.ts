import type { Inbound, Outbound } from "../types.js";
import { parsePicked, type Control, type Ref } from "./ids.js";

// What a click or a submitted form means for the conversation, given the card it came from.

export type CardMessage = Extract<Outbound, { kind: "question" | "plans" }>;
export type Action = Pick<Extract<Inbound, { kind: "action" }>, "action" | "value">;

export const STALE = "This card is no longer active.";
const LOST = "I can't read this choice any more (ThreadML restarted); type your answer instead.";

/**
 * The action a control stands for; a string says why it stands for nothing (shown to the clicker only).
 * `card` is the card as this process posted it, when it did: only index-form ids need it.
 */
export function toAction(control: Control, input: { values: string[]; text: string | null }, card: CardMessage | undefined): Action | string {
  const choice = (ref: Ref | null): Action | string => {
    if (!ref) return LOST;
    if ("value" in ref) return { action: "answer", value: ref.value };
    const value = card?.kind === "question" ? card.question.choices[ref.index]?.value : undefined;
    return value === undefined ? LOST : { action: "answer", value };
  };
  switch (control.kind) {
    case "answer":
      return choice(control.ref);
    case "pick":
      return choice(parsePicked(input.values));
    case "approve": {
      if ("value" in control.ref) return { action: "approve", value: control.ref.value };
      // Index form: the position in ["best", ...plan ids], as the card numbered its buttons.
      const ids = card?.kind === "plans" ? ["best", ...card.plans.map((p) => p.id)] : [];
      const value = ids[control.ref.index];
      return value === undefined ? LOST : { action: "approve", value };
    }
    case "cancel":
    case "stop":
      return { action: "cancel", value: "" };
    case "followup":
      return { action: "followup", value: control.action };
    case "modal": {
      const text = input.text?.trim();
      if (!text) return "There was nothing to send.";
      return { action: control.purpose === "answer" ? "answer" : "revise", value: text };
    }
    case "free":
    case "revise":
      // These open a form; the form's submission carries the action.
      return STALE;
  }
}
