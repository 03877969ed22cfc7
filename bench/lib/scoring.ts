/**
 * Scorer plumbing for the benchmarks: a pool of llama.cpp scorer workers (the extension's own
 * LlamaScorer), a score cache (same prompt + attributes + response -> same log-likelihood: the
 * engine is deterministic, see llamaEngine.ts "Exactness"), and a small concurrency helper.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { LogLikelihoodScorer, ScoreRequest } from '../../src/core';
import type { LlamaEngineOptions, ScoreStats } from '../../src/engines/llama/llamaEngine';
import { LlamaScorer } from '../../src/engines/llama/llamaScorer';

export const WORKER = new URL('../../src/engines/llama/scorerWorker.ts', import.meta.url);
/** The project's tiny trained model; EXACT_FIXTURE_MODEL overrides it (as in the tests). */
export const FIXTURE_MODEL = process.env.EXACT_FIXTURE_MODEL ?? 'test/fixtures/model/exact-tiny.gguf';

/** Runs `fn` over the items with at most `concurrency` in flight; results in input order. */
export async function mapPool<T, R>(items: ReadonlyArray<T>, concurrency: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const run = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, run));
  return out;
}

/** Several LlamaScorer workers behind one scorer: each batch goes to the least busy worker. */
export class ScorerPool implements LogLikelihoodScorer {
  readonly scorers: LlamaScorer[];
  private readonly busy: number[];

  constructor(modelPath: string, size: number, engine: LlamaEngineOptions = {}) {
    this.scorers = Array.from({ length: Math.max(1, size) }, () => new LlamaScorer({ modelPath, workerPath: WORKER, engine: { threads: 1, ...engine } }));
    this.busy = this.scorers.map(() => 0);
  }

  get size(): number {
    return this.scorers.length;
  }

  async scoreBatch(requests: ReadonlyArray<ScoreRequest>, signal?: AbortSignal): Promise<number[]> {
    let best = 0;
    for (let i = 1; i < this.busy.length; i++) if (this.busy[i]! < this.busy[best]!) best = i;
    this.busy[best]! += 1;
    try {
      return await this.scorers[best]!.scoreBatch(requests, signal);
    } finally {
      this.busy[best]! -= 1;
    }
  }

  /** The first worker (embeddings, tokenization, generation). */
  get primary(): LlamaScorer {
    return this.scorers[0]!;
  }

  /** Scoring work summed over the workers since they loaded. */
  async stats(): Promise<ScoreStats> {
    const all = await Promise.all(this.scorers.map((s) => s.info()));
    const sum: ScoreStats = { sequences: 0, evaluatedTokens: 0, scoredTokens: 0, reusedTokens: 0, skippedTokens: 0, greedyHits: 0, milliseconds: 0 };
    for (const { stats } of all) {
      sum.sequences += stats.sequences;
      sum.evaluatedTokens += stats.evaluatedTokens;
      sum.scoredTokens += stats.scoredTokens;
      sum.reusedTokens += stats.reusedTokens;
      sum.skippedTokens += stats.skippedTokens;
      sum.greedyHits += stats.greedyHits;
      sum.milliseconds += stats.milliseconds;
    }
    return sum;
  }

  async dispose(): Promise<void> {
    await Promise.all(this.scorers.map((s) => s.dispose()));
  }
}

function key(r: ScoreRequest): string {
  return JSON.stringify([r.prompt, r.attributes, r.response]);
}

/**
 * Memoizes log-likelihoods by (prompt, attributes in order, response). Misses of one batch are
 * sent to the inner scorer as one batch; a request already in flight is awaited, not re-sent.
 * Optionally persisted to a JSON file keyed by the model file's hash.
 */
export class CachedScorer implements LogLikelihoodScorer {
  private readonly values = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<number>>();
  readonly usage = { calls: 0, requests: 0, hits: 0, misses: 0, innerCalls: 0, loaded: 0 };

  constructor(
    private readonly inner: LogLikelihoodScorer,
    private readonly file?: string,
  ) {
    if (file !== undefined && existsSync(file)) {
      const data = JSON.parse(readFileSync(file, 'utf8')) as Record<string, number>;
      for (const [k, v] of Object.entries(data)) this.values.set(k, v);
      this.usage.loaded = this.values.size;
    }
  }

  get size(): number {
    return this.values.size;
  }

  has(r: ScoreRequest): boolean {
    return this.values.has(key(r));
  }

  async scoreBatch(requests: ReadonlyArray<ScoreRequest>, signal?: AbortSignal): Promise<number[]> {
    this.usage.calls += 1;
    this.usage.requests += requests.length;
    const keys = requests.map(key);
    const missing = new Map<string, ScoreRequest>();
    for (let i = 0; i < requests.length; i++) {
      const k = keys[i]!;
      if (this.values.has(k) || this.inFlight.has(k)) this.usage.hits += 1;
      else if (!missing.has(k)) missing.set(k, requests[i]!);
      else this.usage.hits += 1;
    }
    const own = new Map<string, Promise<number>>();
    if (missing.size > 0) {
      this.usage.misses += missing.size;
      this.usage.innerCalls += 1;
      const list = [...missing.entries()];
      const pending = this.inner.scoreBatch(list.map(([, r]) => r), signal);
      list.forEach(([k], i) => {
        const p = pending.then((scores) => scores[i]!);
        p.catch(() => undefined);
        this.inFlight.set(k, p);
        own.set(k, p);
      });
    }
    // Every value this batch needs, captured now: cached, in flight elsewhere, or sent above.
    const results = keys.map((k) => (this.values.has(k) ? Promise.resolve(this.values.get(k)!) : (own.get(k) ?? this.inFlight.get(k)!)));
    if (own.size > 0) {
      try {
        const scores = await Promise.all(own.values());
        [...own.keys()].forEach((k, i) => this.values.set(k, scores[i]!));
      } finally {
        for (const k of own.keys()) this.inFlight.delete(k);
      }
    }
    return Promise.all(results);
  }

  save(): void {
    if (this.file === undefined) return;
    mkdirSync(dirname(this.file), { recursive: true });
    writeFileSync(this.file, JSON.stringify(Object.fromEntries(this.values)));
  }
}

/** sha256 of a file, streamed (the score cache is keyed by the exact model bytes). */
export function fileHash(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (d) => h.update(d))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });
}
