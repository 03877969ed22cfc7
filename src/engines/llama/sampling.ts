/**
 * Sampling from an exact next-token distribution, in JavaScript, so that the engine reports the
 * model's own log-probabilities (softmax of the raw logits) while it samples with temperature,
 * top-k and top-p, deterministically for a given seed.
 *
 * The order follows llama.cpp's default chain: top-k, then top-p on the renormalized top-k
 * probabilities, then temperature on what is left.
 */

export interface SamplingOptions {
  /** 0 (or less) picks the most likely token. */
  readonly temperature: number;
  /** Keep the k most likely tokens; 0 (or less) keeps all. */
  readonly topK: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p; 1 keeps all. */
  readonly topP: number;
}

export { seededRandom } from '../../core/exploration';

/**
 * Picks a token from `sorted` (token, probability) pairs ordered from most to least likely, as
 * node-llama-cpp returns them.
 */
export function sampleToken(sorted: ReadonlyArray<readonly [number, number]>, options: SamplingOptions, random: () => number): number {
  if (sorted.length === 0) throw new Error('Cannot sample from an empty distribution.');
  if (!(options.temperature > 0)) return sorted[0]![0];
  let n = options.topK > 0 ? Math.min(options.topK, sorted.length) : sorted.length;
  if (options.topP < 1) {
    let total = 0;
    for (let i = 0; i < n; i++) total += sorted[i]![1];
    let cumulative = 0;
    for (let i = 0; i < n; i++) {
      cumulative += sorted[i]![1] / total;
      if (cumulative >= options.topP) {
        n = i + 1;
        break;
      }
    }
  }
  // p_i^(1/T), relative to the top token to stay in range.
  const top = Math.log(Math.max(sorted[0]![1], Number.MIN_VALUE));
  const weights = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const p = sorted[i]![1];
    const w = p > 0 ? Math.exp((Math.log(p) - top) / options.temperature) : 0;
    weights[i] = w;
    sum += w;
  }
  let r = random() * sum;
  for (let i = 0; i < n; i++) {
    r -= weights[i]!;
    if (r < 0) return sorted[i]![0];
  }
  return sorted[n - 1]![0];
}
