// Discord's message limits (checked by the API; an over-long field fails the whole request).

export const LIMITS = {
  content: 2000,
  embedTitle: 256,
  embedDescription: 4096,
  fieldName: 256,
  fieldValue: 1024,
  footer: 2048,
  /** Sum of every title, description, field, footer and author text of one message's embeds. */
  embedsTotal: 6000,
  embedsPerMessage: 10,
  fields: 25,
  rows: 5,
  buttonsPerRow: 5,
  buttonLabel: 80,
  selectOptions: 25,
  selectLabel: 100,
  selectOptionValue: 100,
  customId: 100,
  modalTitle: 45,
  textInputLabel: 45,
  textInputValue: 4000,
  threadName: 100,
  filesPerMessage: 10,
  /** Attachments the bot sends; Discord's smallest per-file cap for bots. */
  fileBytes: 8 * 1024 * 1024,
} as const;

/** Cuts `text` to at most `max` characters, marking the cut with an ellipsis. */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  if (max <= 1) return text.slice(0, Math.max(0, max));
  return `${text.slice(0, max - 1).trimEnd()}…`;
}

/** Splits text into pieces of at most `max` characters, at line breaks where it can. */
export function chunks(text: string, max: number = LIMITS.content): string[] {
  const out: string[] = [];
  let rest = text;
  while (rest.length > max) {
    const cut = rest.lastIndexOf("\n", max);
    const at = cut > max / 2 ? cut : max;
    out.push(rest.slice(0, at));
    rest = rest.slice(at).replace(/^\n/, "");
  }
  if (rest.length || !out.length) out.push(rest);
  return out;
}

/** Text inside a code block, with backticks that would close it defused. */
export const codeBlock = (text: string, lang = ""): string => `\`\`\`${lang}\n${text.replace(/```/g, "`\u200b``")}\n\`\`\``;

/** Room a code block's fences take around its text. */
export const codeBlockOverhead = (lang = ""): number => codeBlock("", lang).length;
