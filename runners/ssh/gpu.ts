// GPU choice on the host, from `nvidia-smi --query-gpu=index,utilization.gpu,memory.used,memory.total
// --format=csv,noheader,nounits`: the least-loaded devices, skipping those this runner already gave
// to a running job when others are free; or the devices the config lists.

export const NVIDIA_SMI_QUERY = "nvidia-smi --query-gpu=index,utilization.gpu,memory.used,memory.total --format=csv,noheader,nounits";

export interface GpuInfo {
  index: number;
  utilization: number;
  memoryUsedMb: number;
  memoryTotalMb: number;
}

function num(field: string | undefined): number | null {
  const n = Number((field ?? "").trim());
  return field !== undefined && field.trim() !== "" && Number.isFinite(n) ? n : null;
}

/** Parses nvidia-smi's CSV; fields it cannot report ("[N/A]") count as fully used. */
export function parseNvidiaSmi(text: string): GpuInfo[] {
  const gpus: GpuInfo[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (!line.trim()) continue;
    const [i, util, used, total] = line.split(",");
    const index = num(i);
    if (index === null || !Number.isInteger(index) || index < 0) continue;
    const memoryTotalMb = num(total) ?? 0;
    gpus.push({ index, utilization: num(util) ?? 100, memoryUsedMb: num(used) ?? memoryTotalMb, memoryTotalMb });
  }
  return gpus;
}

export type GpuSetting = "auto" | "none" | number[];

export interface GpuChoice {
  /** Value for CUDA_VISIBLE_DEVICES; null leaves it unset. */
  visible: string | null;
  /** The chosen devices, with their load when nvidia-smi reported it. */
  devices: GpuInfo[];
  /** For the thread: "GPU 1", "GPUs 0, 2", "no GPU". */
  label: string;
}

function load(g: GpuInfo): number {
  const mem = g.memoryTotalMb > 0 ? g.memoryUsedMb / g.memoryTotalMb : 1;
  return g.utilization / 100 + mem;
}

function label(indices: number[]): string {
  return indices.length === 0 ? "no GPU" : `${indices.length === 1 ? "GPU" : "GPUs"} ${indices.join(", ")}`;
}

/**
 * Picks devices: with "auto", the `perJob` least-loaded ones (`reported` is null when nvidia-smi is missing
 * or failed; `busy` are devices this runner's other jobs hold, taken last); with a list, those devices,
 * all of them, as the config says.
 */
export function chooseGpus(setting: GpuSetting, perJob: number, reported: GpuInfo[] | null, busy: ReadonlySet<number> = new Set()): GpuChoice {
  if (setting === "none") return { visible: "", devices: [], label: "no GPU (gpus: none)" };
  if (Array.isArray(setting)) {
    const present = reported === null ? setting : setting.filter((i) => reported.some((g) => g.index === i));
    if (present.length === 0) return { visible: "", devices: [], label: `no GPU (none of the configured GPUs ${setting.join(", ")} is present)` };
    const devices = present.map((index) => reported?.find((g) => g.index === index) ?? { index, utilization: 0, memoryUsedMb: 0, memoryTotalMb: 0 });
    return { visible: present.join(","), devices, label: label(present) };
  }
  if (reported === null) return { visible: null, devices: [], label: "no GPU (nvidia-smi not found on the host)" };
  if (reported.length === 0) return { visible: "", devices: [], label: "no GPU (nvidia-smi lists none)" };
  const ranked = [...reported].sort((a, b) => Number(busy.has(a.index)) - Number(busy.has(b.index)) || load(a) - load(b) || a.index - b.index);
  const devices = ranked.slice(0, Math.max(1, perJob));
  return { visible: devices.map((g) => g.index).join(","), devices, label: label(devices.map((g) => g.index)) };
}
