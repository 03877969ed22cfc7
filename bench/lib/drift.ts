/**
 * The Drift-style baseline (Kim et al., 2025, as summarized in the EXACT paper, C.1.2), built on
 * the same model: attribute rewards r_i(x, y) = log p(y | x, a_i) - log p(y | x), one per library
 * attribute, combined linearly with per-user weights w fitted under Bradley-Terry on the user's
 * training pairs:
 *
 *   P(y_w > y_l | x) = sigmoid(w . d),   d_i = r_i(x, y_w) - r_i(x, y_l) = J({a_i}) - J({}),
 *
 * by L2-regularized maximum likelihood (Newton's method). A test pair counts as predicted when
 * w . d > 0 (a tie counts as wrong). Features are divided by their root mean square over the
 * training pairs first, so the regularization strength does not depend on the model's scale.
 */

export interface DriftModel {
  /** Weights for the raw (unscaled) features. */
  readonly weights: number[];
  readonly scale: number;
  readonly lambda: number;
  readonly iterations: number;
}

function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]!]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r]![c]!) > Math.abs(m[p]![c]!)) p = r;
    [m[c], m[p]] = [m[p]!, m[c]!];
    const pivot = m[c]![c]!;
    if (Math.abs(pivot) < 1e-12) continue;
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = m[r]![c]! / pivot;
      if (f === 0) continue;
      for (let j = c; j <= n; j++) m[r]![j]! -= f * m[c]![j]!;
    }
  }
  return m.map((row, i) => (Math.abs(row[i]!) < 1e-12 ? 0 : row[n]! / row[i]!));
}

const sigmoid = (z: number): number => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));

/** Fits w on feature rows d (one per training pair, chosen minus rejected). */
export function fitDrift(rows: ReadonlyArray<ReadonlyArray<number>>, lambda = 1): DriftModel {
  const dims = rows[0]?.length ?? 0;
  let sq = 0;
  let count = 0;
  for (const r of rows) for (const v of r) {
    sq += v * v;
    count += 1;
  }
  const scale = count === 0 || sq === 0 ? 1 : Math.sqrt(sq / count);
  const x = rows.map((r) => r.map((v) => v / scale));
  let w = new Array<number>(dims).fill(0);
  let iterations = 0;
  for (; iterations < 50; iterations++) {
    const grad = w.map((wi) => lambda * wi);
    const hess = Array.from({ length: dims }, (_, i) => Array.from({ length: dims }, (_, j) => (i === j ? lambda : 0)));
    for (const xi of x) {
      const z = xi.reduce((s, v, j) => s + v * w[j]!, 0);
      const p = sigmoid(z); // P(chosen > rejected)
      for (let j = 0; j < dims; j++) grad[j]! -= (1 - p) * xi[j]!;
      const c = p * (1 - p);
      for (let a = 0; a < dims; a++) for (let b = 0; b < dims; b++) hess[a]![b]! += c * xi[a]! * xi[b]!;
    }
    const step = solve(hess, grad);
    w = w.map((wi, j) => wi - step[j]!);
    if (Math.max(...step.map(Math.abs)) < 1e-8) break;
  }
  return { weights: w.map((wi) => wi / scale), scale, lambda, iterations };
}

/** w . d: positive means the model prefers the chosen response. */
export function driftMargin(model: DriftModel, features: ReadonlyArray<number>): number {
  return features.reduce((s, v, j) => s + v * model.weights[j]!, 0);
}
