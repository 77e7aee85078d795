// The arithmetic of the leakage check (./leakage.ts): one column against the target, on typed arrays,
// each in one or two passes. Group measures are leave-one-out, so a value seen once proves nothing.

/** Rows per class for each distinct value of a column (the value's "row" of a contingency table). */
export type Groups = Map<string, Float64Array>;

/**
 * The share of rows that the other rows with the same value classify right (leave-one-out), over the
 * rows whose value repeats: a value split evenly between classes classifies nothing, and a value seen
 * once says nothing. Null when fewer than `minShare` of the rows repeat.
 */
export function purity(groups: Groups, minShare: number): number | null {
  let all = 0;
  let rows = 0;
  let right = 0;
  for (const counts of groups.values()) {
    let top = 0;
    let second = 0;
    let n = 0;
    for (const c of counts) {
      n += c;
      if (c > top) [top, second] = [c, top];
      else if (c > second) second = c;
    }
    all += n;
    if (n < 2) continue;
    rows += n;
    if (top - 1 > second) right += top;
  }
  return rows > 0 && rows >= all * minShare ? right / rows : null;
}

/** Each value's majority class, most rows first. */
export function mapping(groups: Groups, classes: readonly string[]): Array<{ value: string; cls: string; rows: number }> {
  const out = [...groups].map(([value, counts]) => {
    let best = 0;
    for (let k = 1; k < counts.length; k++) if (counts[k] > counts[best]) best = k;
    return { value, cls: classes[best], rows: counts.reduce((s, n) => s + n, 0) };
  });
  return out.sort((a, b) => b.rows - a.rows);
}

/** The accuracy a column must reach: 0.99, and nearer 1 when the majority class alone comes close. */
export function purityFloor(classCounts: Float64Array, minimum: number): number {
  let rows = 0;
  let top = 0;
  for (const n of classCounts) {
    rows += n;
    top = Math.max(top, n);
  }
  return Math.max(minimum, 1 - 0.2 * (1 - top / rows));
}

/**
 * How cleanly a number separates the classes: with the classes ordered by their median, the smallest
 * ROC AUC of two neighbouring classes (for two classes, the AUC turned the right way round). Classes
 * with fewer than `minRows` rows are left out: a handful of rows falls apart cleanly by chance.
 */
export function separation(byClass: Float64Array[], minRows: number): number | null {
  const sorted = byClass.filter((vs) => vs.length >= minRows).map((vs) => vs.slice().sort());
  if (sorted.length < 2) return null;
  sorted.sort((a, b) => a[a.length >> 1] - b[b.length >> 1]);
  let worst = 1;
  for (let k = 0; k + 1 < sorted.length; k++) {
    const auc = pairAuc(sorted[k], sorted[k + 1]);
    worst = Math.min(worst, sorted.length === 2 ? Math.max(auc, 1 - auc) : auc);
  }
  return worst;
}

/** P(a value of `hi` is larger than one of `lo`), ties counting half; both sorted, one merge pass. */
function pairAuc(lo: Float64Array, hi: Float64Array): number {
  let below = 0;
  let equal = 0;
  let wins = 0;
  for (let i = 0; i < hi.length; i++) {
    const v = hi[i];
    if (i === 0 || v !== hi[i - 1]) {
      while (below < lo.length && lo[below] < v) below++;
      equal = 0;
      while (below + equal < lo.length && lo[below + equal] === v) equal++;
    }
    wins += below + equal / 2;
  }
  return wins / (lo.length * hi.length);
}

/** Ranks from 0, ties sharing their average rank. */
function ranks(vs: Float64Array): Float64Array {
  const sorted = vs.slice().sort();
  const out = new Float64Array(vs.length);
  for (let i = 0; i < vs.length; i++) out[i] = (bound(sorted, vs[i], false) + bound(sorted, vs[i], true) - 1) / 2;
  return out;
}

/** The first index whose value is >= v (or > v when `after`). */
function bound(sorted: Float64Array, v: number, after: boolean): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] < v || (after && sorted[mid] === v)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Spearman's rank correlation; null when either side is constant. */
export function spearman(xs: Float64Array, ys: Float64Array): number | null {
  const a = ranks(xs);
  const b = ranks(ys);
  const mean = (a.length - 1) / 2;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < a.length; i++) {
    sab += (a[i] - mean) * (b[i] - mean);
    saa += (a[i] - mean) ** 2;
    sbb += (b[i] - mean) ** 2;
  }
  return saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : null;
}

/** Count, sum and sum of squares of the target for each distinct value of a column. */
export type Moments = Map<string, { n: number; sum: number; sq: number }>;

/**
 * Leave-one-out R² of predicting a row by the mean of the other rows with its value, over the rows whose
 * value repeats; null when fewer than `minShare` of the rows repeat (a lone value predicts nothing).
 */
export function groupR2(groups: Moments, minShare: number): number | null {
  let all = 0;
  let n = 0;
  let sum = 0;
  let sq = 0;
  for (const g of groups.values()) {
    all += g.n;
    if (g.n < 2) continue;
    n += g.n;
    sum += g.sum;
    sq += g.sq;
  }
  if (n < all * minShare) return null;
  const mean = sum / n;
  const total = sq - n * mean * mean;
  if (!(total > 1e-12 * Math.max(1, sq))) return null;
  let error = 0;
  // against the mean of the others, a row's residual is its residual against the group mean × n/(n-1)
  for (const g of groups.values()) if (g.n > 1) error += Math.max(0, g.sq - (g.sum * g.sum) / g.n) * (g.n / (g.n - 1)) ** 2;
  return 1 - error / total;
}
