import type { ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HarnessSpecInput } from "../../runners/contract.js";
import { requirePython, runCli } from "../helpers/cli.js";
import { writeGraphCsvs, writeZip } from "../helpers/datasets.js";
import { harnessWorkspace, postPredict, runHarness, startServe } from "../helpers/harness.js";
import { tempDir } from "../helpers/tmp.js";

// Node classification end to end: the harness's graph variant on a planted-partition graph whose labels
// follow its communities while the node features hint at them only weakly. Features propagated over the
// graph (SGC) must beat the same model on the features alone; the model server labels nodes by id and a
// new node by its features and neighbours; the CLI goes from two CSVs to a checked endpoint.

const tmp = tempDir("threadml-graph-");
const cwd = tmp.dir;
const env = { THREADML_DATA_DIR: join(cwd, ".threadml"), THREADML_SEARCH_BUDGET_S: "3" };
const servers: ChildProcess[] = [];
const PAPERS = join(cwd, "papers.csv");
const CITES = join(cwd, "cites.csv");

const SGC = [
  "from sklearn.linear_model import LogisticRegression",
  "from sklearn.pipeline import Pipeline",
  "def build(ctx):",
  "    return Pipeline([('pre', ctx.preprocessor(scale=True)), ('model', LogisticRegression(max_iter=2000, C=1.0))])",
  "",
].join("\n");

beforeAll(() => {
  requirePython();
  writeGraphCsvs(PAPERS, CITES, { nodes: 240, seed: 12 });
});
afterAll(() => {
  for (const s of servers) s.kill("SIGTERM");
});

const workspace = (name: string, data: Record<string, string>) => harnessWorkspace(join(cwd, name), SGC, data);
const serve = (dir: string) => startServe(dir, servers);
const post = (url: string, body: unknown) => postPredict<string>(url, body);

const graphSpec = { node_id_column: "node_id", source_column: "source", target_column: "target" };
const base = { mode: "train", task: "classification", target: "label", metric: "accuracy" } as const;

describe("harness: the graph variant", () => {
  describe.sequential("SGC on a planted-partition graph", () => {
    let dir: string;
    let graph: Awaited<ReturnType<typeof runHarness>>;
    let alone: Awaited<ReturnType<typeof runHarness>>;
    beforeAll(async () => {
      dir = workspace("sgc", { "papers.csv": PAPERS, "cites.csv": CITES });
      graph = await runHarness(dir, { ...base, variant: "graph", data: "papers.csv", drop_columns: ["node_id"], graph: { edges: "cites.csv", ...graphSpec } });
      // the same model and split on the node features alone (the tabular harness drops unlabelled rows)
      const tab = workspace("alone", { "papers.csv": PAPERS });
      alone = await runHarness(tab, { ...base, data: "papers.csv", drop_columns: ["node_id"] });
    });

    it("propagates features over the graph and beats the features alone", () => {
      expect(graph.code, graph.stderr).toBe(0);
      expect(alone.code, alone.stderr).toBe(0);
      const { details, rows } = graph.result;
      expect(details).toMatchObject({ nodes: 240, hops: 2, unknown_edges: 0 });
      expect(details.labelled as number).toBe(rows!.train + rows!.valid + rows!.test);
      expect(details.unlabelled as number).toBeGreaterThan(20);
      expect(graph.result.rows).toEqual(alone.result.rows);
      expect(graph.result.features!.numeric).toEqual(expect.arrayContaining(["x:f1", "h1:f1", "h2:f6", "log_degree"]));
      expect(graph.result.metrics.accuracy).toBeGreaterThan(alone.result.metrics.accuracy + 0.15);
      expect(graph.result.metrics.accuracy).toBeGreaterThan(0.75);
      expect(readFileSync(join(dir, "out", "graph.pkl")).length).toBeGreaterThan(1000);
    });

    it("labels nodes by id, and a new node by its features and neighbours", async () => {
      const sample = graph.result.sample!;
      expect(sample.request).toEqual({ nodes: sample.rows.map((r) => r.node) });
      const url = await serve(dir);
      expect(await post(url, sample.request)).toEqual({ status: 200, body: { predictions: sample.predictions } });
      // a new paper citing three papers of one topic is put in that topic
      const nodes = readFileSync(PAPERS, "utf8").trim().split("\n").slice(1).map((l) => l.split(","));
      const topic1 = nodes.filter((n) => n[7] === "topic_1").slice(0, 3).map((n) => n[0]);
      const unlabelled = nodes.find((n) => n[7] === "")![0];
      const res = await post(url, { nodes: [unlabelled], new_nodes: [{ features: { f1: 0.1, f2: 0.2 }, neighbors: topic1 }] });
      expect(res.status).toBe(200);
      expect(res.body.predictions).toHaveLength(2);
      expect(res.body.predictions![1]).toBe("topic_1");
    });

    it("answers unknown nodes and bad bodies with clear 400s", async () => {
      const url = await serve(dir);
      const cases: Array<[unknown, RegExp]> = [
        [{ nodes: ["p9999"] }, /'p9999' is not a node of the graph/],
        [{ new_nodes: [{ features: {}, neighbors: ["nope"] }] }, /neighbor 'nope' is not a node/],
        [{ new_nodes: [{ features: { f1: "high" }, neighbors: [] }] }, /feature 'f1' expects a number/],
        [{ rows: [] }, /expected \{"nodes"/],
      ];
      for (const [body, error] of cases) {
        const res = await post(url, body);
        expect(res.status).toBe(400);
        expect(res.body.error).toMatch(error);
      }
    });
  });

  it("reads both tables from one zip archive", async () => {
    const zip = writeZip(join(cwd, "cora.zip"), [
      { name: "cora/nodes.csv", data: readFileSync(PAPERS) },
      { name: "cora/edges.csv", data: readFileSync(CITES) },
    ]);
    const dir = workspace("zip", { "cora.zip": zip });
    const run = await runHarness(dir, {
      ...base,
      variant: "graph",
      data: "cora.zip",
      graph: { edges: "cora.zip", nodes_member: "cora/nodes.csv", edges_member: "cora/edges.csv", ...graphSpec },
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.result.metrics.accuracy).toBeGreaterThan(0.75);
  });

  it("explains node tables it cannot use", async () => {
    const dup = join(cwd, "dup.csv");
    writeFileSync(dup, readFileSync(PAPERS, "utf8").replace(/^p1001,/m, "p1000,"));
    const strangers = join(cwd, "strangers.csv");
    writeFileSync(strangers, "source,target\nq1,q2\nq3,q4\n");
    const dir = workspace("bad", { "papers.csv": PAPERS, "cites.csv": CITES, "dup.csv": dup, "strangers.csv": strangers });
    const cases: Array<[Partial<HarnessSpecInput>, RegExp]> = [
      [{ data: "dup.csv" }, /Node id 'p1000' appears twice in 'node_id'/],
      [{ graph: { edges: "strangers.csv", ...graphSpec } }, /No edge of strangers\.csv joins two nodes of papers\.csv/],
      [{ graph: { edges: "cites.csv", ...graphSpec, node_id_column: "nodeid" } }, /node_id_column 'nodeid' is not a column .* Did you mean 'node_id'\?/],
    ];
    for (const [over, message] of cases) {
      const run = await runHarness(dir, { ...base, variant: "graph", data: "papers.csv", graph: { edges: "cites.csv", ...graphSpec }, ...over } as HarnessSpecInput);
      expect(run.code).toBe(1);
      expect(run.result.error).toMatchObject({ class: "value_error" });
      expect(run.result.error!.message).toMatch(message);
    }
  });
});

describe("threadml run: node classification", () => {
  it("asks for the edge list, then trains on the graph and deploys a checked endpoint", async () => {
    const request = "Node classification on papers.csv: predict the label of each paper, accuracy at least 0.7";
    const asked = await runCli([request], { cwd, env });
    expect(asked.result.status).toBe("needs_input");
    expect(asked.result.questions![0]).toMatch(/Where is the edge list that joins the nodes of papers\.csv\?/);

    const { result } = await runCli(["--yes", "--answer", "cites.csv", request], { cwd, env, timeoutMs: 200_000 });
    expect(result.status, result.error).toBe("deployed");
    const req = result.requirements as { task: string; target: string; graph: Record<string, string> };
    expect(req.task).toBe("node_classification");
    expect(req.target).toBe("label");
    expect(req.graph).toEqual({ edges: "cites.csv", node_id_column: "node_id", source_column: "source", target_column: "target" });
    expect(result.metrics.accuracy).toBeGreaterThanOrEqual(0.7);
    expect(result.constraints[0]).toMatchObject({ name: "accuracy", met: true });
    const plans = result.plans as Array<{ models: Array<{ family: string }>; preprocessing: string[] }>;
    expect(plans[0].models[0].family).toBe("logistic_regression");
    expect(plans[0].preprocessing.join(" ")).toMatch(/X, ÂX and Â²X/);
    expect(result.endpoint?.check.ok).toBe(true);
    expect(String(result.endpoint?.check.prediction)).toMatch(/^topic_\d$/);
  });
});
