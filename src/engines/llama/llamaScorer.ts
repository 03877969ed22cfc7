/**
 * LlamaScorer: the EXACT scorer (and a generator and embedder) backed by llama.cpp running in a
 * worker thread. It starts the worker on first use, forwards requests with ids, turns an
 * AbortSignal into a cancel message, turns a worker crash into errors for whatever was pending
 * (the next request starts a fresh worker), and releases the model when idle or, with
 * `memory: 'unloadAfterBatch'`, after every scored batch.
 *
 * Note: a worker thread keeps JavaScript failures away from the caller's thread, but a native
 * crash inside llama.cpp (a segfault) still ends the whole process.
 */
import { Worker } from 'node:worker_threads';
import { basename } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Embedder, GeneratedText, GenerationOptions, LogLikelihoodScorer, ScoreRequest, TextGenerator } from '../../core/ports';
import { abortError, throwIfAborted } from '../../core/ports';
import type { ComputeBackend } from './computeBackend';
import type { GenerateInput, GenerateResult, GenerationChunk, LlamaEngineOptions, LlamaGenerateOptions, ScoreDetail } from './llamaEngine';
import { deserializeError, type CallType, type FromWorker, type ToWorker, type WorkerCalls, type WorkerInit } from './protocol';

export interface LlamaScorerOptions {
  /** The GGUF model. */
  readonly modelPath: string;
  /**
   * The worker entry: dist/scorerWorker.mjs in the extension, src/engines/llama/scorerWorker.ts
   * in tests (a .ts entry is started through tsx's loader, which must be installed).
   */
  readonly workerPath: string | URL;
  readonly engine?: LlamaEngineOptions;
  /** Unload the model after this long without requests (default: never). */
  readonly idleReleaseMs?: number;
  /** End the worker too when the model is released idle (default false: keep it, it is cheap). */
  readonly endWorkerOnRelease?: boolean;
  /**
   * 'keep' (default): the model stays loaded between requests until released (idle, or by the
   * caller). 'unloadAfterBatch': it is released as soon as a scoreBatch call finishes and nothing
   * else is waiting, so it is in memory only while a batch is scored; each batch loads it again.
   */
  readonly memory?: ModelMemoryPolicy;
  /** Called each time the worker has loaded the model, with the backend it runs on. */
  readonly onModelLoaded?: (backend: ComputeBackend, loadMilliseconds: number) => void;
  /** Embedder id stored with vectors (default "llama.cpp:<file name>"). */
  readonly embedderId?: string;
}

export type ModelMemoryPolicy = 'keep' | 'unloadAfterBatch';

interface Pending {
  readonly type: CallType;
  resolve(value: unknown): void;
  reject(error: Error): void;
  onChunk?: (chunk: GenerationChunk) => void;
}

export class LlamaScorer implements LogLikelihoodScorer, TextGenerator, Embedder {
  readonly id: string;
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | undefined;
  private disposed = false;
  /** Whether the worker may hold a loaded model (anything but release was sent since the last release). */
  private mayHoldModel = false;
  /** Counts requests that need the model, so a release that overlaps one does not clear the flag. */
  private modelRequests = 0;
  private loadedBackend: ComputeBackend | undefined;
  /** scoreBatch calls and sequences scored, worker starts, model loads and releases that unloaded it. */
  readonly usage = { scoreCalls: 0, scoredSequences: 0, workerStarts: 0, modelLoads: 0, releases: 0 };

  constructor(private readonly options: LlamaScorerOptions) {
    this.id = options.embedderId ?? `llama.cpp:${basename(options.modelPath)}`;
  }

  /** LogLikelihoodScorer: log p(response [+ end] | rendered prompt) per request. */
  async scoreBatch(requests: ReadonlyArray<ScoreRequest>, signal?: AbortSignal): Promise<number[]> {
    try {
      const value = await this.call('score', { requests: requests.map(plainRequest) }, signal);
      this.usage.scoreCalls += 1;
      this.usage.scoredSequences += requests.length;
      return value;
    } finally {
      // A failed or cancelled batch releases too: the cap holds whatever happened.
      if (this.options.memory === 'unloadAfterBatch' && this.pending.size === 0 && !this.disposed) {
        await this.release(this.options.endWorkerOnRelease === true).catch(() => undefined);
      }
    }
  }

  scoreDetailed(requests: ReadonlyArray<ScoreRequest>, signal?: AbortSignal): Promise<ScoreDetail[]> {
    return this.call('scoreDetailed', { requests: requests.map(plainRequest) }, signal);
  }

  /** TextGenerator: streams text for (prompt, attributes) rendered like scoring renders it. */
  async generate(
    prompt: string,
    attributes: ReadonlyArray<string>,
    options: GenerationOptions,
    onToken?: (text: string) => void,
    signal?: AbortSignal,
  ): Promise<GeneratedText> {
    const onChunk = onToken === undefined ? undefined : (c: GenerationChunk): void => {
      if (c.text !== '') onToken(c.text);
    };
    const result = await this.generateStream({ prompt, attributes: [...attributes] }, options, onChunk, signal);
    return { text: result.text, stoppedAtLimit: result.doneReason === 'length' };
  }

  /** The engine's generate: per-token log-probs, top alternatives and timings. */
  generateStream(input: GenerateInput, options: LlamaGenerateOptions = {}, onChunk?: (chunk: GenerationChunk) => void, signal?: AbortSignal): Promise<GenerateResult> {
    return this.call('generate', { input, options: { ...options, ...(options.stop !== undefined ? { stop: [...options.stop] } : {}) } }, signal, onChunk);
  }

  embed(texts: ReadonlyArray<string>, signal?: AbortSignal): Promise<number[][]> {
    return this.call('embed', { texts: [...texts] }, signal);
  }

  tokenize(text: string, specialTokens = false): Promise<number[]> {
    return this.call('tokenize', { text, specialTokens });
  }

  /** Loads the model if it is not loaded and describes it. */
  info(): Promise<WorkerCalls['info']['result']> {
    return this.call('info', {});
  }

  /** Unloads the model (after running work); the worker stays unless `endWorker`. Next use reloads. */
  async release(endWorker = false): Promise<void> {
    this.clearIdleTimer();
    if (this.worker === undefined) return;
    const before = this.modelRequests;
    const { released } = await this.call('release', {});
    if (released) this.usage.releases += 1;
    if (endWorker && this.modelRequests === before) await this.endWorker();
    if (this.modelRequests === before) {
      this.mayHoldModel = false;
      this.clearIdleTimer();
    }
  }

  /** Ends the worker; pending requests fail. The scorer cannot be used afterwards. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.clearIdleTimer();
    if (this.worker !== undefined) {
      try {
        await this.call('release', {}, undefined, undefined, true);
      } catch {
        // The worker may already be gone.
      }
    }
    await this.endWorker();
  }

  /** False once the model was released (idle or by release()) and nothing asked for it since. */
  get modelMayBeLoaded(): boolean {
    return this.worker !== undefined && this.mayHoldModel;
  }

  /** The backend of the last model load (undefined before the first). */
  get backend(): ComputeBackend | undefined {
    return this.loadedBackend;
  }

  /** Whether a worker thread is running now. */
  get workerRunning(): boolean {
    return this.worker !== undefined;
  }

  private async endWorker(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w === undefined) return;
    w.removeAllListeners('exit');
    w.removeAllListeners('error');
    this.failAll(new Error('The llama.cpp worker was stopped.'));
    await w.terminate();
  }

  private spawn(): Worker {
    const path = this.options.workerPath;
    const init: WorkerInit = { modelPath: this.options.modelPath, options: this.options.engine ?? {} };
    const href = path instanceof URL ? path.href : pathToFileURL(path).href;
    const worker = /\.[cm]?ts$/u.test(href)
      ? // Node 20 does not apply --import hooks to a worker's entry: register tsx inside it first.
        new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(href)}); })`, { eval: true, workerData: init })
      : new Worker(path, { workerData: init });
    this.usage.workerStarts += 1;
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', (e) => this.onCrash(worker, `The llama.cpp worker failed: ${e.message}`));
    worker.on('exit', (code) => this.onCrash(worker, `The llama.cpp worker exited unexpectedly (exit code ${code}).`));
    worker.unref();
    return worker;
  }

  private onCrash(worker: Worker, message: string): void {
    if (this.worker !== worker) return;
    this.worker = undefined;
    this.failAll(new Error(`${message} Pending requests were lost; the next request starts a new worker.`));
  }

  private failAll(error: Error): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(error);
  }

  private onMessage(m: FromWorker): void {
    if (m.type === 'loaded') {
      this.usage.modelLoads += 1;
      this.loadedBackend = m.backend;
      try {
        this.options.onModelLoaded?.(m.backend, m.loadMilliseconds);
      } catch {
        // A listener's bug must not break the scorer.
      }
      return;
    }
    const p = this.pending.get(m.id);
    if (p === undefined) return; // cancelled or failed already
    if (m.type === 'chunk') {
      p.onChunk?.(m.chunk);
      return;
    }
    this.pending.delete(m.id);
    if (m.type === 'result') p.resolve(m.value);
    else p.reject(deserializeError(m.error));
    this.armIdleTimer();
  }

  private call<K extends CallType>(
    type: K,
    args: WorkerCalls[K]['args'],
    signal?: AbortSignal,
    onChunk?: (chunk: GenerationChunk) => void,
    evenIfDisposed = false,
  ): Promise<WorkerCalls[K]['result']> {
    if (this.disposed && !evenIfDisposed) return Promise.reject(new Error('This LlamaScorer has been disposed.'));
    try {
      throwIfAborted(signal);
    } catch (e) {
      return Promise.reject(e);
    }
    this.clearIdleTimer();
    if (type !== 'release') {
      this.mayHoldModel = true;
      this.modelRequests += 1;
    }
    this.worker ??= this.spawn();
    this.worker.ref();
    const worker = this.worker;
    const id = this.nextId++;
    return new Promise<WorkerCalls[K]['result']>((resolve, reject) => {
      const onAbort = (): void => {
        if (!this.pending.delete(id)) return;
        worker.postMessage({ type: 'cancel', id } satisfies ToWorker);
        reject(abortError());
        this.armIdleTimer();
      };
      const cleanup = (): void => signal?.removeEventListener('abort', onAbort);
      this.pending.set(id, {
        type,
        resolve: (v) => {
          cleanup();
          resolve(v as WorkerCalls[K]['result']);
        },
        reject: (e) => {
          cleanup();
          reject(e);
        },
        ...(onChunk !== undefined ? { onChunk } : {}),
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      worker.postMessage({ type, id, ...args } as ToWorker);
    });
  }

  private armIdleTimer(): void {
    if (this.pending.size > 0 || this.worker === undefined) return;
    this.worker.unref();
    const ms = this.options.idleReleaseMs;
    if (ms === undefined || !(ms >= 0) || this.disposed || !this.mayHoldModel) return;
    this.clearIdleTimer();
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.pending.size === 0 && this.mayHoldModel) void this.release(this.options.endWorkerOnRelease === true).catch(() => undefined);
    }, ms);
    this.idleTimer.unref();
  }

  private clearIdleTimer(): void {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }
}

/** Only the fields the worker needs (structured clone copies no prototypes anyway). */
function plainRequest(r: ScoreRequest): ScoreRequest {
  return {
    prompt: r.prompt,
    attributes: [...r.attributes],
    response: r.response,
    ...(r.stopBelow !== undefined ? { stopBelow: r.stopBelow } : {}),
    ...(r.prefixTokens !== undefined ? { prefixTokens: r.prefixTokens } : {}),
  };
}
