import type { LogLikelihoodScorer, ScoreRequest } from '../../src/core';

/**
 * A scorer whose pair objective is a known set function: log p(chosen | x, A) = f(A) and
 * log p(rejected | x, A) = 0, so J(A) = f(A). It counts what it was asked.
 */
export class SetFunctionScorer implements LogLikelihoodScorer {
  calls = 0;
  sequences = 0;
  constructor(
    private readonly f: (attributes: ReadonlyArray<string>) => number,
    private readonly chosen = 'CHOSEN',
  ) {}

  async scoreBatch(requests: ReadonlyArray<ScoreRequest>, signal?: AbortSignal): Promise<number[]> {
    if (signal?.aborted) throw Object.assign(new Error('aborted'), { name: 'AbortError' });
    this.calls += 1;
    this.sequences += requests.length;
    return requests.map((r) => (r.response === this.chosen ? this.f(r.attributes) : 0));
  }
}

export const pair = { prompt: 'How do I boil an egg?', chosen: 'CHOSEN', rejected: 'REJECTED' };

/** f(A) = sum of weights: modular, so greedy is optimal. */
export function modular(weights: Record<string, number>): (a: ReadonlyArray<string>) => number {
  return (a) => a.reduce((s, x) => s + (weights[x] ?? 0), 0);
}

/** Weighted coverage: submodular and monotone. */
export function coverage(covers: Record<string, string[]>, weight: Record<string, number>): (a: ReadonlyArray<string>) => number {
  return (a) => {
    const covered = new Set(a.flatMap((x) => covers[x] ?? []));
    return [...covered].reduce((s, e) => s + (weight[e] ?? 1), 0);
  };
}
