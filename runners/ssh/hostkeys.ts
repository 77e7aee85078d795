import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

// Host-key policy: strict by default. A key is trusted when it matches the configured fingerprint
// (`hostKey`) or a line of an OpenSSH known_hosts file (`knownHosts`, else ~/.ssh/known_hosts).

/** OpenSSH's fingerprint of a raw public-key blob: "SHA256:" + unpadded base64 of its SHA-256. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** The key type named inside a public-key blob ("ssh-ed25519", "ssh-rsa", …). */
export function keyType(blob: Buffer): string {
  if (blob.length < 4) return "unknown";
  const len = blob.readUInt32BE(0);
  return len > 0 && len < 64 && blob.length >= 4 + len ? blob.subarray(4, 4 + len).toString("latin1") : "unknown";
}

function normaliseFingerprint(fp: string): string {
  const trimmed = fp.trim();
  const body = trimmed.replace(/^SHA256:/i, "").replace(/=+$/, "");
  return `SHA256:${body}`;
}

export interface KnownHostLine {
  marker: "" | "@revoked" | "@cert-authority";
  patterns: string;
  type: string;
  key: Buffer;
  line: number;
}

/** Parses known_hosts text; malformed lines are skipped as OpenSSH does. */
export function parseKnownHosts(text: string): KnownHostLine[] {
  const out: KnownHostLine[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith("#")) return;
    const fields = line.split(/\s+/);
    let marker: KnownHostLine["marker"] = "";
    if (fields[0] === "@revoked" || fields[0] === "@cert-authority") marker = fields.shift() as KnownHostLine["marker"];
    if (fields.length < 3) return;
    const [patterns, type, b64] = fields;
    const key = Buffer.from(b64, "base64");
    if (key.length === 0) return;
    out.push({ marker, patterns, type, key, line: i + 1 });
  });
  return out;
}

/** The name a known_hosts line uses for a host: "host" on port 22, "[host]:port" otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${body}$`, "i");
}

function hashedMatches(entry: string, name: string): boolean {
  // |1|salt|hash: HMAC-SHA1 of the name keyed with the salt.
  const parts = entry.split("|");
  if (parts.length !== 4 || parts[1] !== "1") return false;
  const salt = Buffer.from(parts[2], "base64");
  const want = Buffer.from(parts[3], "base64");
  const got = createHmac("sha1", salt).update(name).digest();
  return want.length === got.length && timingSafeEqual(want, got);
}

/** Whether a comma-separated pattern list matches the host name (negated patterns veto). */
export function patternsMatch(patterns: string, name: string): boolean {
  if (patterns.startsWith("|")) return hashedMatches(patterns, name);
  let matched = false;
  for (const p of patterns.split(",")) {
    const negated = p.startsWith("!");
    const pattern = negated ? p.slice(1) : p;
    if (!globToRegExp(pattern).test(name)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

export interface HostKeyPolicyInput {
  /** The runner's name in the config. */
  runner: string;
  host: string;
  port: number;
  hostKey?: string;
  knownHosts?: string;
}

export interface HostKeyPolicy {
  /** Host-key algorithms to offer, so that the host answers with a key type we can check; undefined: any. */
  algorithms: string[] | undefined;
  /** Null when the key is trusted, else the message explaining the refusal and how to trust it. */
  verify(blob: Buffer): string | null;
  /** Where trust comes from, for messages. */
  source: string;
}

// The algorithms OpenSSH negotiates for each key type found in known_hosts.
const ALGORITHMS_FOR_TYPE: Record<string, string[]> = {
  "ssh-ed25519": ["ssh-ed25519"],
  "ssh-rsa": ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
  "ecdsa-sha2-nistp256": ["ecdsa-sha2-nistp256"],
  "ecdsa-sha2-nistp384": ["ecdsa-sha2-nistp384"],
  "ecdsa-sha2-nistp521": ["ecdsa-sha2-nistp521"],
};

export function expandHome(p: string): string {
  if (p === "~") return os.homedir();
  return p.startsWith("~/") ? path.join(os.homedir(), p.slice(2)) : p;
}

function trustHint(input: HostKeyPolicyInput, seenType: string, seenFp: string, file: string | null): string {
  const keyscan = `ssh-keyscan${input.port === 22 ? "" : ` -p ${input.port}`} ${input.host}`;
  return (
    `If this is the host's real key (compare it with \`ssh-keygen -lf\` on the host's ${seenType} key in /etc/ssh), trust it by setting ` +
    `hostKey: "${seenFp}" under runners.${input.runner} in the config` +
    (file ? `, or by adding the host to ${file} (\`${keyscan} >> ${file}\`).` : ".")
  );
}

/** Builds the policy once per connection attempt; reads the known_hosts file now, so edits apply on reconnect. */
export function hostKeyPolicy(input: HostKeyPolicyInput): HostKeyPolicy {
  const where = `${input.runner} (${input.host}:${input.port})`;
  if (input.hostKey) {
    const want = normaliseFingerprint(input.hostKey);
    return {
      algorithms: undefined,
      source: `hostKey in runners.${input.runner}`,
      verify(blob) {
        const seen = fingerprint(blob);
        if (seen === want) return null;
        return (
          `Refused to connect to ${where}: its host key ${keyType(blob)} ${seen} does not match the configured hostKey ${want}. ` +
          `Someone could be intercepting the connection, or the host was reinstalled. ` +
          trustHint(input, keyType(blob), seen, null)
        );
      },
    };
  }

  const file = expandHome(input.knownHosts ?? "~/.ssh/known_hosts");
  let lines: KnownHostLine[] = [];
  let readError: string | null = null;
  try {
    lines = parseKnownHosts(readFileSync(file, "utf8"));
  } catch (err) {
    readError = (err as NodeJS.ErrnoException).code === "ENOENT" ? "it does not exist" : (err as Error).message;
  }
  const name = knownHostsName(input.host, input.port);
  const forHost = lines.filter((l) => l.marker !== "@cert-authority" && patternsMatch(l.patterns, name));
  const trusted = forHost.filter((l) => l.marker === "");
  const types = [...new Set(trusted.map((l) => l.type))];
  const algorithms = types.flatMap((t) => ALGORITHMS_FOR_TYPE[t] ?? []);

  return {
    algorithms: algorithms.length ? algorithms : undefined,
    source: file,
    verify(blob) {
      const seen = fingerprint(blob);
      const type = keyType(blob);
      if (forHost.some((l) => l.marker === "@revoked" && l.key.equals(blob)))
        return `Refused to connect to ${where}: its host key ${type} ${seen} is marked @revoked in ${file}.`;
      if (trusted.some((l) => l.key.equals(blob))) return null;
      const sameType = trusted.filter((l) => l.type === type);
      if (sameType.length) {
        const expected = sameType.map((l) => `${fingerprint(l.key)} (line ${l.line})`).join(", ");
        return (
          `Refused to connect to ${where}: its host key has CHANGED. It offered ${type} ${seen}, but ${file} expects ${expected}. ` +
          `Someone could be intercepting the connection, or the host was reinstalled. If the change is expected, remove the old line ` +
          `(\`ssh-keygen -R "${name}" -f ${file}\`) and trust the new key: ` +
          trustHint(input, type, seen, file)
        );
      }
      const why = readError ? `${file} cannot be read (${readError})` : `${file} has no ${trusted.length ? `${type} ` : ""}key for ${name}`;
      return `Refused to connect to ${where}: its host key is not known (${why}). It offered ${type} ${seen}. ` + trustHint(input, type, seen, file);
    },
  };
}
