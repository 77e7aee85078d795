import type { APIEmbed } from "discord.js";
import { LIMITS, clip, codeBlock, codeBlockOverhead } from "./limits.js";

// Embeds are drafted with plain text parts, then fitted to Discord's per-field and per-message limits:
// the longest parts are shortened first, and code blocks are cut inside their fences so they stay closed.

export interface Part {
  text: string;
  /** Set for a code block (the language, or "" for none). */
  code?: string;
}

export interface EmbedDraft {
  title?: string;
  description?: Part;
  fields?: Array<{ name: string; value: Part; inline?: boolean }>;
  footer?: string;
  color?: number;
  /** An attachment name (shown as `attachment://name`) or a URL. */
  image?: string;
}

const render = (p: Part): string => (p.code === undefined ? p.text : codeBlock(p.text, p.code));
const overhead = (p: Part): number => (p.code === undefined ? 0 : codeBlockOverhead(p.code));
const MIN_PART = 40;

function size(d: EmbedDraft): number {
  let n = (d.title?.length ?? 0) + (d.footer?.length ?? 0);
  if (d.description) n += render(d.description).length;
  for (const f of d.fields ?? []) n += f.name.length + render(f.value).length;
  return n;
}

/** Fits drafts into at most 10 embeds whose texts stay within every Discord limit. */
export function buildEmbeds(input: EmbedDraft[]): APIEmbed[] {
  const drafts = input.slice(0, LIMITS.embedsPerMessage).map((d) => ({
    ...d,
    title: d.title === undefined ? undefined : clip(d.title, LIMITS.embedTitle),
    footer: d.footer === undefined ? undefined : clip(d.footer, LIMITS.footer),
    description: d.description && { ...d.description, text: clip(d.description.text, LIMITS.embedDescription - overhead(d.description)) },
    fields: (d.fields ?? []).slice(0, LIMITS.fields).map((f) => ({
      ...f,
      name: clip(f.name, LIMITS.fieldName) || "\u200b",
      // Discord rejects empty field values.
      value: { ...f.value, text: clip(f.value.text, LIMITS.fieldValue - overhead(f.value)) || "—" },
    })),
  }));
  const total = () => drafts.reduce((n, d) => n + size(d), 0);
  let excess = total() - LIMITS.embedsTotal;
  while (excess > 0) {
    const parts = drafts.flatMap((d) => [...(d.description ? [d.description] : []), ...d.fields.map((f) => f.value)]);
    const longest = parts.reduce<Part | null>((a, p) => (!a || p.text.length > a.text.length ? p : a), null);
    if (!longest || longest.text.length <= MIN_PART) break;
    longest.text = clip(longest.text, Math.max(MIN_PART, longest.text.length - excess));
    excess = total() - LIMITS.embedsTotal;
  }
  return drafts.map((d) => {
    const embed: APIEmbed = {};
    if (d.title) embed.title = d.title;
    if (d.description && d.description.text) embed.description = render(d.description);
    if (d.fields.length) embed.fields = d.fields.map((f) => ({ name: f.name, value: render(f.value), ...(f.inline ? { inline: true } : {}) }));
    if (d.footer) embed.footer = { text: d.footer };
    if (d.color !== undefined) embed.color = d.color;
    if (d.image) embed.image = { url: /^https?:/.test(d.image) ? d.image : `attachment://${d.image}` };
    return embed;
  });
}

/** Total text of a message's embeds, as Discord counts it toward its 6000-character limit. */
export function embedsLength(embeds: APIEmbed[]): number {
  return embeds.reduce(
    (n, e) => n + (e.title?.length ?? 0) + (e.description?.length ?? 0) + (e.footer?.text.length ?? 0) + (e.fields ?? []).reduce((m, f) => m + f.name.length + f.value.length, 0),
    0,
  );
}
