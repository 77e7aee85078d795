import { XMLParser } from "fast-xml-parser";
import type { KnowledgeItem } from "../agents/types.js";
import { retrieveLocal } from "./index.js";

// Knowledge for planning comes from sources behind one interface. The local recipe base is always on;
// online sources are optional, queried in parallel with a timeout and cached. A source that fails is
// reported as unavailable and planning goes on without it.

export interface KnowledgeQuery {
  task: string;
  /** Words from the request and the data (domain, target, requested models). */
  terms: string[];
}

export interface KnowledgeSource {
  readonly name: string;
  search(query: KnowledgeQuery, signal: AbortSignal): Promise<KnowledgeItem[]>;
}

export interface Retrieval {
  items: KnowledgeItem[];
  /** Sources that failed or timed out, with why. */
  unavailable: Array<{ source: string; reason: string }>;
}

const MAX_TEXT = 600;
const clip = (s: string) => (s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT)}…` : s);
const searchText = (q: KnowledgeQuery) => [...q.terms, q.task.replace(/_/g, " ")].filter(Boolean).join(" ");

export class LocalSource implements KnowledgeSource {
  readonly name = "local";
  async search(query: KnowledgeQuery): Promise<KnowledgeItem[]> {
    return retrieveLocal(query.task);
  }
}

async function getJson(url: string, signal: AbortSignal): Promise<unknown> {
  const res = await fetch(url, { signal, headers: { accept: "application/json" } });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return res.json();
}

/** Recent papers from the arXiv API (Atom feed). */
export class ArxivSource implements KnowledgeSource {
  readonly name = "arxiv";
  constructor(private readonly baseUrl = "https://export.arxiv.org/api/query") {}
  async search(query: KnowledgeQuery, signal: AbortSignal): Promise<KnowledgeItem[]> {
    const q = encodeURIComponent(`all:${searchText(query)}`);
    const res = await fetch(`${this.baseUrl}?search_query=${q}&max_results=3`, { signal });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const feed = new XMLParser().parse(await res.text()) as { feed?: { entry?: unknown } };
    const entries = ([] as Array<{ title?: string; summary?: string }>).concat((feed.feed?.entry as never) ?? []);
    return entries.map((e) => ({ source: this.name, title: String(e.title ?? "").replace(/\s+/g, " ").trim(), text: clip(String(e.summary ?? "").replace(/\s+/g, " ").trim()) }));
  }
}

/** Popular models for the task from the Hugging Face Hub API. */
export class HuggingFaceSource implements KnowledgeSource {
  readonly name = "huggingface";
  constructor(private readonly baseUrl = "https://huggingface.co/api") {}
  async search(query: KnowledgeQuery, signal: AbortSignal): Promise<KnowledgeItem[]> {
    const q = encodeURIComponent(searchText(query));
    const models = (await getJson(`${this.baseUrl}/models?search=${q}&sort=downloads&limit=5`, signal)) as Array<{ id?: string; pipeline_tag?: string; downloads?: number }>;
    if (!Array.isArray(models)) throw new Error("unexpected answer");
    return models.map((m) => ({ source: this.name, title: String(m.id ?? ""), text: clip(`${m.pipeline_tag ?? "model"}, ${m.downloads ?? 0} downloads`) }));
  }
}

/** Related datasets on OpenML, with their size, as benchmarks to compare with. */
export class OpenMLSource implements KnowledgeSource {
  readonly name = "openml";
  constructor(private readonly baseUrl = "https://www.openml.org/api/v1/json") {}
  async search(query: KnowledgeQuery, signal: AbortSignal): Promise<KnowledgeItem[]> {
    const name = encodeURIComponent(query.terms[0] ?? query.task);
    const body = (await getJson(`${this.baseUrl}/data/list/data_name/${name}/limit/3`, signal)) as {
      data?: { dataset?: Array<{ name?: string; did?: number; quality?: Array<{ name: string; value: string }> }> };
    };
    return (body.data?.dataset ?? []).map((d) => {
      const rows = d.quality?.find((q) => q.name === "NumberOfInstances")?.value;
      return { source: this.name, title: `OpenML dataset ${d.name} (id ${d.did})`, text: clip(`${rows ?? "?"} rows`) };
    });
  }
}

export interface RetrieverOptions {
  timeoutMs: number;
  /** How long an answer is reused for the same query. */
  cacheMs?: number;
}

/** Queries every source in parallel; each has its own timeout, results are cached per source and query. */
export class Retriever {
  private readonly cache = new Map<string, { at: number; items: KnowledgeItem[] }>();

  constructor(
    readonly sources: KnowledgeSource[],
    private readonly options: RetrieverOptions,
  ) {}

  async retrieve(query: KnowledgeQuery): Promise<Retrieval> {
    const key = JSON.stringify(query);
    const settled = await Promise.allSettled(this.sources.map((s) => this.fromSource(s, query, key)));
    const out: Retrieval = { items: [], unavailable: [] };
    settled.forEach((r, i) => {
      if (r.status === "fulfilled") out.items.push(...r.value);
      else out.unavailable.push({ source: this.sources[i].name, reason: reasonOf(r.reason) });
    });
    return out;
  }

  private async fromSource(source: KnowledgeSource, query: KnowledgeQuery, key: string): Promise<KnowledgeItem[]> {
    const cacheKey = `${source.name}:${key}`;
    const hit = this.cache.get(cacheKey);
    if (hit && Date.now() - hit.at < (this.options.cacheMs ?? 3_600_000)) return hit.items;
    const items = await source.search(query, AbortSignal.timeout(this.options.timeoutMs));
    this.cache.set(cacheKey, { at: Date.now(), items });
    return items;
  }
}

function reasonOf(err: unknown): string {
  const e = err as Error;
  if (e?.name === "TimeoutError" || e?.name === "AbortError") return "timed out";
  return e?.message ?? String(err);
}

export type OnlineSourceName = "arxiv" | "huggingface" | "openml";

/** The local base plus the configured online sources; `urls` overrides their base URLs (proxies, tests). */
export function createRetriever(
  names: OnlineSourceName[],
  options: RetrieverOptions & { urls?: Partial<Record<OnlineSourceName, string>> },
): Retriever {
  const make: Record<OnlineSourceName, () => KnowledgeSource> = {
    arxiv: () => new ArxivSource(options.urls?.arxiv),
    huggingface: () => new HuggingFaceSource(options.urls?.huggingface),
    openml: () => new OpenMLSource(options.urls?.openml),
  };
  return new Retriever([new LocalSource(), ...names.map((n) => make[n]())], options);
}
