import { z } from "zod";

// Configuration: defaults < config file (THREADML_CONFIG, JSON or YAML) < environment variables.
// Every field has a default, so ThreadML starts with no configuration at all.

const positiveInt = z.coerce.number().int().positive();
const positive = z.coerce.number().positive();

export const LimitsConfig = z.object({
  /** Wall-clock limit of one training run (seconds). */
  wallTimeS: positive.default(600),
  /** CPU-seconds limit of one run. */
  cpuS: positive.default(1800),
  /** Memory of one run in MiB: all its processes together where cgroups (or the watchdog) allow, and each one's address space. */
  memoryMb: positiveInt.default(4096),
  /** Processes and threads one run may have at once. */
  pids: positiveInt.default(256),
  /** MiB one run may add to its workspace (also the largest file it may write). */
  diskMb: positiveInt.default(2048),
  /** Largest accepted data file (MiB). */
  maxUploadMb: positive.default(200),
});

export const LLM_ROLES = ["manager", "prompt", "data", "model", "operation", "verifier"] as const;
export type LlmRole = (typeof LLM_ROLES)[number];

/** Key and base URL of one provider other than the OpenAI-compatible one. */
const ProviderEndpoint = z.object({ apiKey: z.string().optional(), baseUrl: z.string().optional() });

export const LlmConfig = z.object({
  /** OpenAI-compatible base URL, e.g. https://api.openai.com/v1 or http://127.0.0.1:8000/v1 (vLLM, Ollama, llama.cpp). */
  baseUrl: z.string().optional(),
  apiKey: z.string().optional(),
  /**
   * Default model for every role, as `provider:model` (openai, anthropic, google-genai, ollama), e.g.
   * `anthropic:claude-sonnet-4-5` or `ollama:qwen2.5:7b`; without a provider, the OpenAI-compatible endpoint.
   */
  model: z.string().min(1).default("gpt-4o-mini"),
  /** Per-role models, same form, e.g. a cheaper one for parsing ("prompt") and verification ("verifier"). */
  models: z.partialRecord(z.enum(LLM_ROLES), z.string().min(1)).default({}),
  /** Keys and base URLs of the other providers. */
  providers: z
    .object({ anthropic: ProviderEndpoint.optional(), "google-genai": ProviderEndpoint.optional(), ollama: ProviderEndpoint.optional() })
    .default({}),
  /**
   * How structured answers are asked for: "native" sends the answer's JSON Schema in the provider's own
   * structured mode (falling back to plain JSON where a server refuses it); "json" always asks for plain JSON.
   */
  structuredOutput: z.enum(["native", "json"]).default("native"),
  /** Most LLM requests one conversation may make (retries and repairs included); then the offline agents take over. */
  maxCalls: positiveInt.default(30),
  /** Seconds before one request is abandoned (and retried). */
  timeoutS: positive.default(60),
  /** Retries after a timeout, 429 or 5xx, with exponential backoff. */
  maxRetries: z.coerce.number().int().min(0).default(3),
  temperature: z.coerce.number().min(0).max(2).default(0.2),
  /** Prices per million tokens, for the cost estimate in reports. */
  pricing: z
    .object({ promptPerMTok: z.coerce.number().min(0).default(0.15), completionPerMTok: z.coerce.number().min(0).default(0.6) })
    .default({ promptPerMTok: 0.15, completionPerMTok: 0.6 }),
  /** Code-generation attempts before falling back to the offline template. */
  codeAttempts: positiveInt.default(3),
  /** Optional online knowledge sources, queried in parallel with the local base. */
  sources: z.array(z.enum(["arxiv", "huggingface", "openml"])).default([]),
  sourceTimeoutS: positive.default(8),
  /** Base URLs of the online sources, for proxies and mirrors. */
  sourceUrls: z.partialRecord(z.enum(["arxiv", "huggingface", "openml"]), z.string()).default({}),
});
export type LlmConfig = z.infer<typeof LlmConfig>;

/** How a host is reached over SSH and what runs there: shared by SSH hosts and Slurm login nodes. */
const SshLogin = {
  port: positiveInt.default(22),
  /** Private key file; without it the SSH agent (`agent`, else SSH_AUTH_SOCK) is used. */
  identityFile: z.string().optional(),
  passphrase: z.string().optional(),
  agent: z.string().optional(),
  /** An OpenSSH known_hosts file that lists the host, or the host key's fingerprint ("SHA256:…"). */
  knownHosts: z.string().optional(),
  hostKey: z.string().optional(),
  /** Folder on the host that holds the runs (created when missing); on Slurm, shared with the compute nodes. */
  workdir: z.string().default(".threadml"),
  /** Python on the host, after `setup` has run. */
  python: z.string().default("python3"),
  /**
   * Shell lines run before Python, e.g. "source ~/venv/bin/activate" or "conda activate ml"; on Slurm
   * also before its commands and in every job ("module load python", "export SLURM_CONF=…").
   */
  setup: z.array(z.string()).default([]),
  /** Seconds between SSH keepalives. */
  keepaliveS: positive.default(10),
};

/** A remote host reached over SSH (runners/ssh); training runs there detached. */
export const SshRunnerConfig = z.object({
  kind: z.literal("ssh"),
  host: z.string().min(1),
  user: z.string().min(1),
  ...SshLogin,
  /** GPUs to use: "auto" picks the least-loaded ones nvidia-smi reports; "none" hides every GPU; or indices. */
  gpus: z.union([z.enum(["auto", "none"]), z.array(z.coerce.number().int().min(0))]).default("auto"),
  /** GPUs per job when `gpus` is "auto". */
  gpusPerJob: positiveInt.default(1),
  /** Jobs run at once on this host; more wait. */
  maxJobs: positiveInt.default(2),
  /** Address the model server binds to on the host, and the name the endpoint URL uses. */
  serveHost: z.string().default("127.0.0.1"),
  publicHost: z.string().optional(),
});
export type SshRunnerConfig = z.infer<typeof SshRunnerConfig>;

/**
 * A Slurm cluster (runners/slurm): one batch job per harness run, submitted on the login node over SSH,
 * or on this machine when no host is given. The work folder must be shared with the compute nodes.
 */
export const SlurmRunnerConfig = z
  .object({
    kind: z.literal("slurm"),
    /** The login node; without it the Slurm commands run on this machine. */
    host: z.string().min(1).optional(),
    /** Required with host. */
    user: z.string().min(1).optional(),
    ...SshLogin,
    partition: z.string().min(1).optional(),
    account: z.string().min(1).optional(),
    qos: z.string().min(1).optional(),
    /** --gres=gpu:N per job; 0 asks for none. */
    gpusPerJob: z.coerce.number().int().min(0).default(0),
    cpusPerJob: positiveInt.optional(),
    memoryMb: positiveInt.optional(),
    /** The cluster's cap on one job (minutes); a job gets the smaller of this and ThreadML's wall-time limit. */
    timeLimitMin: positiveInt.default(60),
    /** Extra sbatch options, one per element (e.g. "--constraint=a100"). */
    sbatchArgs: z.array(z.string()).default([]),
  })
  .refine((c) => c.host === undefined || c.user !== undefined, { message: "a Slurm runner with a host needs a user", path: ["user"] });
export type SlurmRunnerConfig = z.infer<typeof SlurmRunnerConfig>;

export const LocalRunnerConfig = z.object({ kind: z.literal("local") });

export const RunnerConfig = z.discriminatedUnion("kind", [LocalRunnerConfig, SshRunnerConfig, SlurmRunnerConfig]);
export type RunnerConfig = z.infer<typeof RunnerConfig>;

export const Config = z.object({
  engine: z.enum(["offline", "llm"]).default("offline"),
  defaultRunner: z.string().default("local"),
  /** Named runners besides the built-in "local" one, e.g. { gpu1: { kind: "ssh", host, user, … } }. */
  runners: z.record(z.string().regex(/^[A-Za-z0-9_-]+$/, "runner names use letters, digits, - and _"), RunnerConfig).default({}),
  /** Workspaces, uploads and artifacts live here. */
  dataDir: z.string().default(".threadml"),
  /** Python interpreter for the harness; "auto" prefers one that has scikit-learn. */
  python: z.string().default("auto"),
  /** "auto" uses bubblewrap when it is installed; "off" runs under limits only (with a warning). */
  sandbox: z.enum(["auto", "bubblewrap", "off"]).default("auto"),
  limits: LimitsConfig.default(LimitsConfig.parse({})),
  retention: z
    .object({
      /** Workspaces (<dataDir>/runs) and job records (<dataDir>/jobs) of runs idle this many days are removed; 0 keeps them. */
      runsDays: z.coerce.number().min(0).default(7),
    })
    .default({ runsDays: 7 }),
  planning: z
    .object({
      /** Number of diverse plans (P). */
      plans: positiveInt.max(5).default(3),
    })
    .default({ plans: 3 }),
  search: z
    .object({
      /** Random configurations tried per model family, the defaults included. */
      trialsPerFamily: positiveInt.default(5),
      /** Wall-time budget of the whole hyperparameter search (seconds). */
      budgetS: positive.default(6),
      /** Cross-validate on at most this many training rows. */
      sampleRows: positiveInt.default(2000),
      cvFolds: positiveInt.min(2).default(3),
    })
    .default({ trialsPerFamily: 5, budgetS: 6, sampleRows: 2000, cvFolds: 3 }),
  /** Rows used by the smoke run before the full run. */
  smokeRows: positiveInt.default(300),
  budgets: z
    .object({
      /** Code-fix attempts after a failed run. */
      fix: z.coerce.number().int().min(0).default(2),
      /** Re-planning rounds after execution or constraint failures. */
      replan: z.coerce.number().int().min(0).default(1),
      /** Alternative plans tried when a constraint is unmet. */
      alternatives: z.coerce.number().int().min(0).default(2),
    })
    .default({ fix: 2, replan: 1, alternatives: 2 }),
  seed: z.coerce.number().int().default(42),
  /** Host the model server binds to. */
  serveHost: z.string().default("127.0.0.1"),
  /** Bearer token for the model server: "auto" when serveHost is not a loopback address, "always", or "off". */
  serveToken: z.enum(["auto", "always", "off"]).default("auto"),
  /**
   * With a chat platform, graph work, training jobs and model servers run this much nicer (0-19) than
   * the thread that acknowledges platform events, so acknowledgements stay prompt under load; 0 turns it off.
   */
  workNice: z.coerce.number().int().min(0).max(19).default(10),
  /** Users (platform ids) who may approve, revise or cancel any conversation besides its requester. */
  approvers: z.array(z.string()).default([]),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  redis: z
    .object({
      /** redis://… ; without it conversations live in memory only. */
      url: z.string().optional(),
      /** Prefix of every key ThreadML writes. */
      prefix: z.string().default("threadml"),
      /** Finished conversations expire after this many seconds (0 keeps them). */
      finishedTtlS: z.coerce.number().int().min(0).default(14 * 24 * 3600),
      /** A conversation's lease lasts this long without renewal: after a crash, another process resumes it this much later. */
      leaseTtlS: positive.default(15),
    })
    .default({ prefix: "threadml", finishedTtlS: 14 * 24 * 3600, leaseTtlS: 15 }),
  slack: z
    .object({
      botToken: z.string().optional(),
      signingSecret: z.string().optional(),
      appToken: z.string().optional(),
      apiUrl: z.string().optional(),
      port: positiveInt.optional(),
    })
    .default({}),
  discord: z.object({ token: z.string().optional(), apiUrl: z.string().optional() }).default({}),
  llm: LlmConfig.default(LlmConfig.parse({})),
});
export type Config = z.infer<typeof Config>;
export type ConfigInput = z.input<typeof Config>;
