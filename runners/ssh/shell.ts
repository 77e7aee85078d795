// POSIX sh helpers for the scripts the SSH runner sends to the host. Scripts are fed to `sh -s` on
// stdin, so the login shell (bash, zsh, fish…) never parses them; only sh quoting matters.

/** One sh word, single-quoted. */
export function q(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A path as one sh word; a leading `~/` stays relative to the login home. */
export function qPath(path: string): string {
  if (path === "~") return `"$HOME"`;
  if (path.startsWith("~/")) return `"$HOME"/${q(path.slice(2))}`;
  return q(path);
}

/** A remote path with `~/` removed: SFTP and sh both resolve relative paths from the login home. */
export function homeRelative(path: string): string {
  if (path === "~") return ".";
  return path.startsWith("~/") ? path.slice(2) || "." : path;
}

/** Joins POSIX path parts. */
export function pjoin(...parts: string[]): string {
  return parts
    .filter((p) => p !== "")
    .join("/")
    .replace(/\/{2,}/g, "/");
}

/**
 * The script wrapped in a brace group: sh must read the whole group before it runs any of it, so a
 * command that reads stdin cannot swallow the rest of the script.
 */
export function asStdinScript(lines: string[]): string {
  return `{\n${lines.join("\n")}\n}\n`;
}

/**
 * The `setup` lines from the config, each checked: a failing line stops the script with a message
 * naming it. `source` is a bash word that sh lacks, so it is defined as `.`.
 */
export function setupLines(setup: string[], onFail: (line: string) => string): string[] {
  const out = [`source() { . "$@"; }`];
  for (const line of setup) out.push(`${line}\n_rc=$?; [ "$_rc" -eq 0 ] || { ${onFail(line)}; }`);
  return out;
}
