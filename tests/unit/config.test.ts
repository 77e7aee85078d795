import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir("threadml-config-");

/** Runs `fn` and returns the ConfigError it throws (failing when it throws nothing or something else). */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("loadConfig", () => {
  it("has a usable default for everything when nothing is set", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      engine: "offline",
      defaultRunner: "local",
      dataDir: ".threadml",
      python: "auto",
      sandbox: "auto",
      planning: { plans: 3 },
      limits: { wallTimeS: 600, cpuS: 1800, memoryMb: 4096, maxUploadMb: 200 },
      search: { trialsPerFamily: 5, budgetS: 6, sampleRows: 2000, cvFolds: 3 },
      budgets: { fix: 2, replan: 1, alternatives: 2 },
      seed: 42,
      serveHost: "127.0.0.1",
      approvers: [],
      logLevel: "info",
      slack: {},
      discord: {},
      llm: {},
    });
    expect(config.redis.url).toBeUndefined();
  });

  it("maps environment variables to nested fields with the right types", () => {
    const config = loadConfig({
      THREADML_PLANS: "5",
      THREADML_APPROVERS: "U1, U2,,U3 ",
      SLACK_API_URL: "http://localhost:9999/api",
      PORT: "3001",
      THREADML_WALL_TIME_S: "12.5",
      THREADML_SANDBOX: "off",
      LOG_LEVEL: "debug",
      OPENAI_API_KEY: "sk-test",
    });
    expect(config.planning.plans).toBe(5);
    expect(config.approvers).toEqual(["U1", "U2", "U3"]);
    expect(config.slack.apiUrl).toBe("http://localhost:9999/api");
    expect(config.slack.port).toBe(3001);
    expect(config.limits.wallTimeS).toBe(12.5);
    // Setting one limit keeps the defaults of the others.
    expect(config.limits.memoryMb).toBe(4096);
    expect(config.sandbox).toBe("off");
    expect(config.logLevel).toBe("debug");
    expect(config.llm.apiKey).toBe("sk-test");
  });

  it("treats an empty variable as unset", () => {
    expect(loadConfig({ THREADML_PLANS: "", PORT: "" })).toMatchObject({ planning: { plans: 3 }, slack: {} });
  });

  it("reads a YAML config file", () => {
    const file = tmp.write(
      "threadml.yaml",
      ["engine: offline", "sandbox: off", "planning:", "  plans: 2", "limits:", "  memoryMb: 1024", "approvers: [U9]", "slack:", "  port: 4000"].join("\n"),
    );
    const config = loadConfig({ THREADML_CONFIG: file });
    // `off` stays a string (YAML 1.2), which the enum needs.
    expect(config.sandbox).toBe("off");
    expect(config.planning.plans).toBe(2);
    expect(config.limits).toEqual({ wallTimeS: 600, cpuS: 1800, memoryMb: 1024, maxUploadMb: 200, pids: 256, diskMb: 2048 });
    expect(config.approvers).toEqual(["U9"]);
    expect(config.slack.port).toBe(4000);
  });

  it("reads a JSON config file", () => {
    const file = tmp.write("threadml.json", JSON.stringify({ dataDir: "/srv/threadml", search: { budgetS: 30 }, seed: 7 }));
    const config = loadConfig({ THREADML_CONFIG: file });
    expect(config.dataDir).toBe("/srv/threadml");
    expect(config.search).toEqual({ trialsPerFamily: 5, budgetS: 30, sampleRows: 2000, cvFolds: 3 });
    expect(config.seed).toBe(7);
  });

  it("treats an empty config file as no settings", () => {
    const file = tmp.write("empty.yaml", "");
    expect(loadConfig({ THREADML_CONFIG: file }).planning.plans).toBe(3);
  });

  it("lets environment variables win over the file, field by field", () => {
    const file = tmp.write("both.yaml", "planning:\n  plans: 2\nslack:\n  apiUrl: http://file\n  port: 4000\napprovers: [FROM_FILE]\n");
    const config = loadConfig({ THREADML_CONFIG: file, THREADML_PLANS: "4", SLACK_API_URL: "http://env", THREADML_APPROVERS: "FROM_ENV" });
    expect(config.planning.plans).toBe(4);
    expect(config.slack).toEqual({ apiUrl: "http://env", port: 4000 });
    expect(config.approvers).toEqual(["FROM_ENV"]);
  });

  it("lets explicit overrides win over the environment", () => {
    expect(loadConfig({ THREADML_ENGINE: "llm" }, { engine: "offline" }).engine).toBe("offline");
  });

  it("reads a Slurm runner with the documented names and defaults, and wants a user with a host", () => {
    const file = tmp.write(
      "slurm.yaml",
      [
        "runners:",
        "  cluster:",
        "    kind: slurm",
        "    host: login.hpc.example",
        "    user: threadml",
        "    workdir: /shared/threadml",
        "    setup: ['module load python']",
        "    partition: gpu",
        "    account: ml",
        "    qos: normal",
        "    gpusPerJob: 2",
        "    cpusPerJob: 8",
        "    memoryMb: 32000",
        "    timeLimitMin: 90",
        "    sbatchArgs: ['--constraint=a100']",
      ].join("\n"),
    );
    const cluster = loadConfig({ THREADML_CONFIG: file }).runners.cluster;
    expect(cluster).toMatchObject({ kind: "slurm", host: "login.hpc.example", port: 22, python: "python3", partition: "gpu", gpusPerJob: 2, cpusPerJob: 8, memoryMb: 32000, timeLimitMin: 90, sbatchArgs: ["--constraint=a100"] });
    const here = loadConfig({}, { runners: { here: { kind: "slurm" } } }).runners.here;
    expect(here).toMatchObject({ kind: "slurm", workdir: ".threadml", gpusPerJob: 0, timeLimitMin: 60, setup: [], sbatchArgs: [] });
    expect(configError(() => loadConfig({}, { runners: { c: { kind: "slurm", host: "login" } } })).message).toMatch(/runners\.c\.user.*needs a user/);
  });

  it("names the field of an invalid number", () => {
    const err = configError(() => loadConfig({ THREADML_PLANS: "abc" }));
    expect(err.message).toMatch(/^Invalid configuration: /);
    expect(err.message).toContain("planning.plans");
  });

  it("rejects a number out of range", () => {
    expect(configError(() => loadConfig({ THREADML_PLANS: "9" })).message).toContain("planning.plans");
    expect(configError(() => loadConfig({ PORT: "-1" })).message).toContain("slack.port");
  });

  it("names the field of an invalid choice, from the environment or a file", () => {
    expect(configError(() => loadConfig({ THREADML_SANDBOX: "maybe" })).message).toMatch(/sandbox: .*auto/);
    const file = tmp.write("bad-sandbox.yaml", "sandbox: maybe\n");
    expect(configError(() => loadConfig({ THREADML_CONFIG: file })).message).toContain("sandbox");
  });

  it("names the path of a missing config file", () => {
    const missing = `${tmp.dir}/nope/threadml.yaml`;
    const err = configError(() => loadConfig({ THREADML_CONFIG: missing }));
    expect(err.message).toContain(missing);
    expect(err.message).toContain("THREADML_CONFIG");
  });

  it("rejects invalid YAML and JSON with the file's name", () => {
    const yaml = tmp.write("broken.yaml", "planning:\n  plans: [1, 2\n");
    const yamlErr = configError(() => loadConfig({ THREADML_CONFIG: yaml }));
    expect(yamlErr.message).toContain(yaml);
    expect(yamlErr.message).toContain("not valid YAML");

    const json = tmp.write("broken.json", "{ \"seed\": ");
    const jsonErr = configError(() => loadConfig({ THREADML_CONFIG: json }));
    expect(jsonErr.message).toContain("not valid JSON");
  });

  it("rejects a file whose top level is not a mapping", () => {
    const file = tmp.write("list.yaml", "- a\n- b\n");
    expect(configError(() => loadConfig({ THREADML_CONFIG: file })).message).toContain("mapping");
  });
});
