/**
 * Background indexing: runs attribute selection (Algorithm 1) for every pair that has no
 * selection for the current scoring + embedding model, one pair at a time, and stores the
 * result in the preference memory.
 *
 * - The work list is derived from the log only (PreferenceMemory.pendingPairs): after a crash
 *   or restart a new run simply continues; a pair whose selection was not durably stored is
 *   redone, one that was is not.
 * - One indexer per storage folder across processes: a run holds `indexing.lock` (with a
 *   heartbeat); a second window waits ('waiting' event) and polls until it can take over.
 * - Cancellable with an AbortSignal or cancel(); nothing is stored after cancellation.
 * - Errors are classified (see indexingErrors.ts): transient ones are retried with exponential
 *   backoff a bounded number of times, pair errors skip the pair, fatal ones stop the run.
 *   Nothing stays failed for good: a failed pair is tried again by a run after
 *   `failedRetryMs` (or at once after retryFailed()), and a run that ended because the engine
 *   was unreachable starts again by itself after `unavailableRetryMs` (doubling, at most 8 times).
 * - Typed progress events; onIdle runs when a run ends so the caller can release the model.
 */
import {
  abortError,
  DEFAULT_K,
  greedySelect,
  lazyGreedySelect,
  screenedGreedySelect,
  type Embedder,
  type LogLikelihoodScorer,
  type SelectionResult,
} from '../core';
import { FileLock, type FileLockOptions, type LockHandle } from '../storage/fileLock';
import type { ModelKey, PreferenceMemory, StoredPair } from '../storage/preferenceMemory';
import { classifyIndexingError, errorMessage, type IndexingErrorClass } from './indexingErrors';

/**
 * 'greedy': Algorithm 1, one batched scorer call per round; 'early-stopping': the same selection
 * with exact early stopping (fewer scored tokens, a call per candidate); 'lazy': CELF;
 * 'screening': candidates screened on the responses' first tokens, the best few scored in full.
 */
export const INDEXING_ALGORITHMS = ['greedy', 'early-stopping', 'lazy', 'screening'] as const;
export type IndexingAlgorithm = (typeof INDEXING_ALGORITHMS)[number];

/**
 * The extension's default (package.json's `exact.indexing.algorithm`): the cheapest method whose
 * benchmark accuracy is within 1 point of plain greedy's (bench/results/selection-cost.md).
 */
export const DEFAULT_INDEXING_ALGORITHM: IndexingAlgorithm = 'lazy';

/** What a selection is stored as: early stopping selects exactly what greedy selects. */
function storedAlgorithm(algorithm: IndexingAlgorithm): 'greedy' | 'lazy' | 'screening' {
  return algorithm === 'early-stopping' ? 'greedy' : algorithm;
}

export interface RetryPolicy {
  /** Attempts per pair for transient errors, the first included (default 4). */
  readonly maxAttempts?: number;
  /** Backoff before retry n is baseDelayMs * 2^(n-1), capped, with ±25% jitter (defaults 500 ms, 15 s). */
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
}

export interface IndexingQueueOptions {
  readonly memory: PreferenceMemory;
  readonly scorer: LogLikelihoodScorer;
  readonly embedder: Embedder;
  /** The scoring model's identifier, stored with each selection. */
  readonly model: string;
  /** 'llama.cpp', 'ollama', ... (stored with each selection). */
  readonly scorerKind: string;
  /** Attribute library (built-in + custom names). */
  readonly library: ReadonlyArray<string>;
  /** Attributes per pair (default 3). */
  readonly k?: number;
  /** Default DEFAULT_INDEXING_ALGORITHM. */
  readonly algorithm?: IndexingAlgorithm;
  readonly nonNegative?: boolean;
  /** Chance-level test for each added attribute (selection.ts chanceLevel); undefined: off. */
  readonly significance?: number;
  /** Lazy greedy's re-evaluation batch size. */
  readonly lazyBatchSize?: number;
  readonly retry?: RetryPolicy;
  /** Override the error classification. */
  readonly classifyError?: (err: unknown) => IndexingErrorClass;
  /** Called (and awaited) whenever a run ends, whatever the reason: release the model here. */
  readonly onIdle?: (summary: IndexingSummary) => void | Promise<void>;
  /** How often a queue waiting for another window's indexer checks again (default 5 s). */
  readonly busyRetryMs?: number;
  /** A pair that failed is skipped this long, then tried again by the next run (default 10 min). */
  readonly failedRetryMs?: number;
  /** After a run ended 'unavailable', start another after this long (default 60 s; doubles each time, 8 times at most). */
  readonly unavailableRetryMs?: number;
  readonly lock?: FileLockOptions;
}

export type IdleReason =
  /** Nothing left to do (failed pairs aside). */
  | 'complete'
  | 'cancelled'
  /** A fatal error (model missing, ...): see the 'failed' event. */
  | 'fatal'
  /** Transient errors outlasted the retries (engine unreachable). */
  | 'unavailable'
  /** Another process broke our indexing lock as stale. */
  | 'lock-lost';

export interface IndexingSummary {
  readonly reason: IdleReason;
  /** Pairs selected and stored in this run. */
  readonly done: number;
  /** Pairs that failed in this run. */
  readonly failed: number;
  /** done + failed + still pending when the run ended (what "2/5" counts against). */
  readonly total: number;
  /** Pairs still without a selection for the current models (failed ones included). */
  readonly remaining: number;
  readonly durationMs: number;
  /** The error that ended the run, for 'fatal' / 'unavailable' / 'lock-lost'. */
  readonly error?: string;
  /** The thrown error behind `error`, so a UI can offer the fix for its kind (start Ollama, pull the model...). */
  readonly cause?: unknown;
}

export type IndexingEvent =
  | { readonly type: 'waiting'; readonly reason: 'another-process'; readonly holderPid?: number }
  | { readonly type: 'queued'; readonly pairIds: string[]; readonly total: number }
  | { readonly type: 'started'; readonly pairId: string; readonly position: number; readonly total: number; readonly attempt: number }
  | { readonly type: 'retrying'; readonly pairId: string; readonly attempt: number; readonly delayMs: number; readonly error: string }
  | {
      readonly type: 'done';
      readonly pairId: string;
      readonly position: number;
      readonly total: number;
      readonly attributes: string[];
      readonly gain: number;
      readonly durationMs: number;
      readonly scorerCalls: number;
      /** False when the pair was deleted while it was being analysed. */
      readonly stored: boolean;
    }
  | {
      readonly type: 'failed';
      readonly pairId: string;
      readonly position: number;
      readonly total: number;
      readonly error: string;
      readonly errorClass: Exclude<IndexingErrorClass, 'abort'>;
      readonly attempts: number;
    }
  | ({ readonly type: 'idle' } & IndexingSummary);

export type IndexingListener = (event: IndexingEvent) => void;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(abortError());
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError());
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

class StopRun extends Error {
  constructor(
    readonly reason: IdleReason,
    message: string,
    cause?: unknown,
  ) {
    super(message, { cause });
  }
}

export class IndexingQueue {
  private readonly listeners = new Set<IndexingListener>();
  private readonly failed = new Map<string, { message: string; at: number }>();
  private laterTimer: NodeJS.Timeout | undefined;
  private unavailableRuns = 0;
  private readonly lock: FileLock;
  private current: Promise<IndexingSummary> | undefined;
  private controller: AbortController | undefined;
  private kickedWhileRunning = false;
  private disposed = false;

  constructor(private readonly options: IndexingQueueOptions) {
    // Ours, kept in the memory's folder so every window of the workspace finds the same one.
    this.lock = options.memory.exclusiveLock('indexing', { purpose: 'indexing', ...options.lock });
  }

  get models(): ModelKey {
    return { model: this.options.model, embeddingModel: this.options.embedder.id };
  }

  get running(): boolean {
    return this.current !== undefined;
  }

  /** Pairs that failed with a pair error (id -> message); skipped until failedRetryMs passed or retryFailed(). */
  get failedPairs(): ReadonlyMap<string, string> {
    return new Map([...this.failed].map(([id, f]) => [id, f.message]));
  }

  onEvent(listener: IndexingListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Forget the failed pairs so the next run tries them again (the profile's "Retry failed"). */
  retryFailed(): void {
    this.failed.clear();
  }

  /** Failed pairs whose wait is over are tried again. */
  private skipFailed(id: string): boolean {
    const f = this.failed.get(id);
    if (f === undefined) return false;
    if (performance.now() - f.at < (this.options.failedRetryMs ?? 600_000)) return true;
    this.failed.delete(id);
    return false;
  }

  /** A later run after the engine was unreachable (bounded: the delay doubles, 8 tries at most). */
  private scheduleLater(reason: IdleReason): void {
    clearTimeout(this.laterTimer);
    this.laterTimer = undefined;
    if (reason !== 'unavailable') {
      if (reason === 'complete') this.unavailableRuns = 0;
      return;
    }
    if (this.unavailableRuns >= 8 || this.disposed) return;
    const delay = (this.options.unavailableRetryMs ?? 60_000) * 2 ** this.unavailableRuns;
    this.unavailableRuns++;
    this.laterTimer = setTimeout(() => {
      this.laterTimer = undefined;
      this.kick();
    }, delay);
    this.laterTimer.unref?.();
  }

  /** Stops the queue: cancels a run and any later one. */
  dispose(): void {
    this.disposed = true;
    clearTimeout(this.laterTimer);
    this.cancel();
  }

  /** New pairs were recorded: start a run in the background, or let the running one pick them up. */
  kick(): void {
    if (this.disposed) return;
    if (this.current !== undefined) {
      this.kickedWhileRunning = true;
      return;
    }
    void this.run().catch(() => undefined);
  }

  /** Cancels the running run, if any. */
  cancel(): void {
    this.controller?.abort();
  }

  /** Runs until nothing is pending (or cancelled / stopped); concurrent calls share one run. */
  run(signal?: AbortSignal): Promise<IndexingSummary> {
    if (this.current !== undefined) return this.current;
    const controller = new AbortController();
    this.controller = controller;
    const onAbort = (): void => controller.abort();
    if (signal?.aborted) controller.abort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    this.current = this.runOnce(controller.signal).finally(() => {
      signal?.removeEventListener('abort', onAbort);
      this.current = undefined;
      this.controller = undefined;
      if (this.kickedWhileRunning && !controller.signal.aborted) {
        this.kickedWhileRunning = false;
        this.kick();
      }
      this.kickedWhileRunning = false;
    });
    return this.current;
  }

  private emit(event: IndexingEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch {
        // A listener's bug must not stop indexing.
      }
    }
  }

  private classify(err: unknown, signal: AbortSignal): IndexingErrorClass {
    if (signal.aborted) return 'abort';
    return (this.options.classifyError ?? classifyIndexingError)(err);
  }

  private async runOnce(signal: AbortSignal): Promise<IndexingSummary> {
    const t0 = performance.now();
    let done = 0;
    let failed = 0;
    let reason: IdleReason = 'complete';
    let error: string | undefined;
    let cause: unknown;
    let handle: LockHandle | undefined;
    try {
      handle = await this.acquire(signal);
      await this.loop(signal, handle, {
        onDone: () => done++,
        onFailed: () => failed++,
        counts: () => ({ done, failed }),
      });
    } catch (err) {
      if (err instanceof StopRun) {
        reason = err.reason;
        error = err.message;
        cause = err.cause;
      } else if (this.classify(err, signal) === 'abort') reason = 'cancelled';
      else {
        reason = 'fatal';
        error = errorMessage(err);
        cause = err;
      }
    } finally {
      await handle?.release().catch(() => undefined);
    }
    if (done > 0) {
      // The queue stores with deferIndex; bring the vector index up to date once per run.
      try {
        await this.options.memory.syncIndex();
      } catch (err) {
        if (reason === 'complete') {
          reason = 'fatal';
          error = `Could not update the vector index: ${errorMessage(err)}`;
        }
      }
    }
    let remaining = 0;
    try {
      remaining = (await this.options.memory.pendingPairs(this.models)).length;
    } catch {
      remaining = 0;
    }
    const pendingNotFailedHere = Math.max(0, remaining - failed);
    const summary: IndexingSummary = {
      reason,
      done,
      failed,
      total: done + failed + pendingNotFailedHere,
      remaining,
      durationMs: performance.now() - t0,
      ...(error !== undefined ? { error } : {}),
      ...(cause !== undefined ? { cause } : {}),
    };
    this.scheduleLater(reason);
    this.emit({ type: 'idle', ...summary });
    try {
      await this.options.onIdle?.(summary);
    } catch {
      // The caller's release failing must not turn into an unhandled rejection here.
    }
    return summary;
  }

  /** The indexing lock; waits (polling) while another process indexes this folder. */
  private async acquire(signal: AbortSignal): Promise<LockHandle> {
    let announced = false;
    for (;;) {
      if (signal.aborted) throw abortError();
      const handle = await this.lock.tryAcquire();
      if (handle !== undefined) return handle;
      if (!announced) {
        const holder = await this.lock.readHolder();
        this.emit({ type: 'waiting', reason: 'another-process', ...(holder !== undefined ? { holderPid: holder.pid } : {}) });
        announced = true;
      }
      await sleep(this.options.busyRetryMs ?? 5_000, signal);
    }
  }

  private async loop(
    signal: AbortSignal,
    handle: LockHandle,
    c: { onDone: () => void; onFailed: () => void; counts: () => { done: number; failed: number } },
  ): Promise<void> {
    const announced = new Set<string>();
    const triedThisRun = new Set<string>();
    for (;;) {
      if (signal.aborted) throw abortError();
      if (handle.lost) throw new StopRun('lock-lost', 'Another process took over indexing (our lock was considered stale).');
      const pending = (await this.options.memory.pendingPairs(this.models)).filter((p) => !triedThisRun.has(p.id) && !this.skipFailed(p.id));
      if (pending.length === 0) return;
      const { done, failed } = c.counts();
      const total = done + failed + pending.length;
      const fresh = pending.filter((p) => !announced.has(p.id));
      if (fresh.length > 0) {
        fresh.forEach((p) => announced.add(p.id));
        this.emit({ type: 'queued', pairIds: fresh.map((p) => p.id), total });
      }
      const pair = pending[0]!;
      triedThisRun.add(pair.id);
      await this.processPair(pair, done + failed + 1, total, signal, c);
    }
  }

  private async processPair(
    pair: StoredPair,
    position: number,
    total: number,
    signal: AbortSignal,
    c: { onDone: () => void; onFailed: () => void },
  ): Promise<void> {
    const maxAttempts = Math.max(1, this.options.retry?.maxAttempts ?? 4);
    const base = this.options.retry?.baseDelayMs ?? 500;
    const cap = this.options.retry?.maxDelayMs ?? 15_000;
    for (let attempt = 1; ; attempt++) {
      this.emit({ type: 'started', pairId: pair.id, position, total, attempt });
      try {
        const t0 = performance.now();
        const result = await this.select(pair, signal);
        const embedding = await this.embed(pair.prompt, signal);
        if (signal.aborted) throw abortError();
        const durationMs = performance.now() - t0;
        const stored = await this.options.memory.storeSelection({
          pairId: pair.id,
          result,
          embedding,
          models: this.models,
          scorerKind: this.options.scorerKind,
          algorithm: storedAlgorithm(this.options.algorithm ?? DEFAULT_INDEXING_ALGORITHM),
          k: this.options.k ?? DEFAULT_K,
          durationMs,
          deferIndex: true,
        });
        c.onDone();
        this.emit({
          type: 'done',
          pairId: pair.id,
          position,
          total,
          attributes: [...result.attributes],
          gain: result.gain,
          durationMs,
          scorerCalls: result.scorerCalls,
          stored: stored !== undefined,
        });
        return;
      } catch (err) {
        const cls = this.classify(err, signal);
        if (cls === 'abort') throw err;
        const message = errorMessage(err);
        if (cls === 'transient' && attempt < maxAttempts) {
          const delayMs = Math.round(Math.min(cap, base * 2 ** (attempt - 1)) * (0.75 + Math.random() / 2));
          this.emit({ type: 'retrying', pairId: pair.id, attempt, delayMs, error: message });
          await sleep(delayMs, signal);
          continue;
        }
        c.onFailed();
        this.emit({ type: 'failed', pairId: pair.id, position, total, error: message, errorClass: cls, attempts: attempt });
        if (cls === 'pair') {
          this.failed.set(pair.id, { message, at: performance.now() });
          return;
        }
        throw new StopRun(cls === 'fatal' ? 'fatal' : 'unavailable', message, err);
      }
    }
  }

  private select(pair: StoredPair, signal: AbortSignal): Promise<SelectionResult> {
    const o = this.options;
    const k = o.k ?? DEFAULT_K;
    const text = { prompt: pair.prompt, chosen: pair.chosen, rejected: pair.rejected };
    const common = { k, signal, ...(o.nonNegative !== undefined ? { nonNegative: o.nonNegative } : {}), ...(o.significance !== undefined ? { significance: o.significance } : {}) };
    switch (o.algorithm ?? DEFAULT_INDEXING_ALGORITHM) {
      case 'lazy':
        return lazyGreedySelect(o.scorer, text, o.library, { ...common, ...(o.lazyBatchSize !== undefined ? { batchSize: o.lazyBatchSize } : {}) });
      case 'screening':
        return screenedGreedySelect(o.scorer, text, o.library, common);
      case 'early-stopping':
        return greedySelect(o.scorer, text, o.library, { ...common, earlyStopping: true });
      case 'greedy':
        return greedySelect(o.scorer, text, o.library, common);
    }
  }

  private async embed(prompt: string, signal: AbortSignal): Promise<number[]> {
    const vectors = await this.options.embedder.embed([prompt], signal);
    const v = vectors[0];
    if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      throw Object.assign(new Error(`The embedder ${this.options.embedder.id} returned no usable vector for the prompt.`), { indexingClass: 'pair' });
    }
    return v;
  }
}
