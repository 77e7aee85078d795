import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRetriever, Retriever, type KnowledgeSource } from "../../graphs/automl/knowledge/sources.js";
import { loadConfig } from "../../src/config.js";
import { Engine } from "../../src/engine.js";
import { createLogger } from "../../src/logger.js";
import { writeClassificationCsv } from "../helpers/datasets.js";
import { tempDir } from "../helpers/tmp.js";

// Retrieval against a local stand-in for the arXiv, Hugging Face and OpenML APIs.

const ATOM = `<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom">
<entry><title>Gradient boosting for
 tabular data</title><summary>Trees still win on tables.</summary></entry>
<entry><title>Calibrated classifiers</title><summary>Probabilities that mean something.</summary></entry></feed>`;

let server: Server;
let base = "";
const hits: string[] = [];
let hfStatus = 200;

beforeAll(async () => {
  server = createServer((req, res) => {
    hits.push(req.url ?? "");
    if (req.url?.startsWith("/arxiv")) return res.end(ATOM);
    if (req.url?.startsWith("/hf/models")) {
      res.statusCode = hfStatus;
      return res.end(JSON.stringify([{ id: "org/tabular-model", pipeline_tag: "tabular-classification", downloads: 1200 }]));
    }
    if (req.url?.startsWith("/openml/data/list")) return res.end(JSON.stringify({ data: { dataset: [{ name: "banana", did: 42, quality: [{ name: "NumberOfInstances", value: "5300" }] }] } }));
    if (req.url?.startsWith("/slow")) return; // never answers
    res.statusCode = 404;
    res.end("{}");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const query = { task: "classification", terms: ["banana"] };

describe("knowledge sources", () => {
  it("reads arXiv, Hugging Face and OpenML answers next to the local base", async () => {
    const retriever = createRetriever(["arxiv", "huggingface", "openml"], {
      timeoutMs: 2000,
      urls: { arxiv: `${base}/arxiv`, huggingface: `${base}/hf`, openml: `${base}/openml` },
    });
    const { items, unavailable } = await retriever.retrieve(query);
    expect(unavailable).toEqual([]);
    const by = (s: string) => items.filter((i) => i.source === s);
    expect(by("local").length).toBeGreaterThan(3);
    expect(by("arxiv").map((i) => i.title)).toEqual(["Gradient boosting for tabular data", "Calibrated classifiers"]);
    expect(by("huggingface")[0]).toMatchObject({ title: "org/tabular-model", text: expect.stringMatching(/1200 downloads/) });
    expect(by("openml")[0].title).toMatch(/banana \(id 42\)/);
  });

  it("reports a failing or hanging source as unavailable and keeps the others", async () => {
    hfStatus = 500;
    const slow: KnowledgeSource = { name: "slow", search: (_q, signal) => fetch(`${base}/slow`, { signal }).then(() => []) };
    const retriever = new Retriever(
      [...createRetriever(["huggingface"], { timeoutMs: 500, urls: { huggingface: `${base}/hf` } }).sources, slow],
      { timeoutMs: 500 },
    );
    const { items, unavailable } = await retriever.retrieve(query);
    hfStatus = 200;
    expect(items.some((i) => i.source === "local")).toBe(true);
    expect(unavailable).toEqual([
      { source: "huggingface", reason: "HTTP 500" },
      { source: "slow", reason: "timed out" },
    ]);
  });

  it("caches answers per source and query", async () => {
    const retriever = createRetriever(["arxiv"], { timeoutMs: 2000, urls: { arxiv: `${base}/arxiv` } });
    const before = hits.filter((h) => h.startsWith("/arxiv")).length;
    await retriever.retrieve({ task: "regression", terms: ["crabs"] });
    await retriever.retrieve({ task: "regression", terms: ["crabs"] });
    expect(hits.filter((h) => h.startsWith("/arxiv")).length).toBe(before + 1);
  });

  it("plans even when a configured source is down, and says so", async () => {
    const tmp = tempDir("threadml-knowledge-");
    writeClassificationCsv(join(tmp.dir, "bananas.csv"), { rows: 100, seed: 3 });
    const config = loadConfig({}, { dataDir: join(tmp.dir, ".threadml"), llm: { sources: ["arxiv"], sourceUrls: { arxiv: "http://127.0.0.1:9/none" }, sourceTimeoutS: 1 } });
    const engine = new Engine({ config, logger: createLogger("silent"), cwd: tmp.dir });
    try {
      const o = await engine.advance("t", { text: "Predict Quality in bananas.csv" });
      expect(o.kind === "interrupt" && o.payload.kind).toBe("approval");
      expect(o.state.notices.join(" ")).toMatch(/Knowledge source arxiv is unavailable/);
      expect(o.state.knowledge.some((k) => k.source === "local")).toBe(true);
    } finally {
      await engine.close();
    }
  });
});
