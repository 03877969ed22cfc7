/**
 * A thin, typed wrapper over the `ollama` npm client that adds what the extension needs around
 * it: one configured host and nothing else, timeouts (short for metadata, long for the first
 * token so a cold model load is tolerated, an idle limit between streamed chunks), cancellation
 * through AbortSignal for every call (the npm client only aborts streams), and errors mapped to
 * the typed classes in ./errors.
 */
import { Ollama, type GenerateRequest, type Logprob, type TokenLogprob } from 'ollama';
import { abortError } from '../../core/ports';
import type { OllamaConfig } from './config';
import {
  MIN_LOGPROBS_VERSION,
  OllamaError,
  OllamaInvalidAnswerError,
  OllamaModelNotFoundError,
  OllamaNotRunningError,
  OllamaRequestError,
  OllamaTimeoutError,
  OllamaVersionTooOldError,
  type TimeoutPhase,
} from './errors';

export type { Logprob, TokenLogprob };

/** One token alternative as Ollama reports it; `bytes` is sent by newer servers. */
export interface OllamaTokenLogprob {
  readonly token: string;
  readonly logprob: number;
  readonly bytes?: ReadonlyArray<number>;
}

export interface OllamaLogprob extends OllamaTokenLogprob {
  readonly top_logprobs?: ReadonlyArray<OllamaTokenLogprob>;
}

/** One NDJSON object of a /api/generate stream. */
export interface GenerateChunk {
  readonly response: string;
  readonly done: boolean;
  readonly done_reason?: string;
  readonly logprobs?: ReadonlyArray<OllamaLogprob>;
  readonly eval_count?: number;
  readonly prompt_eval_count?: number;
}

export interface GenerateResult {
  readonly text: string;
  /** Ollama's done_reason ('stop', 'length'), or 'aborted-by-caller' when onChunk asked to stop. */
  readonly doneReason: string;
  readonly logprobs: OllamaLogprob[];
  readonly evalCount: number | undefined;
  readonly promptEvalCount: number | undefined;
}

/** Returned by an onChunk handler to end the stream early (the connection is closed). */
export const STOP_STREAM = Symbol('stop-stream');

export type GenerateBody = Omit<GenerateRequest, 'stream'>;

export interface ShowInfo {
  readonly modelfile: string;
  readonly template: string;
  readonly parameters: string;
  readonly capabilities: string[];
  readonly details: Record<string, unknown>;
  readonly modelInfo: Record<string, unknown>;
}

export interface ModelSummary {
  readonly name: string;
  readonly model: string;
  readonly digest?: string;
  readonly size?: number;
}


/** Connection-level failure codes that mean "nobody answers at that address". */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ETIMEDOUT',
  'EPIPE',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);

/**
 * Per-call deadline and cancellation: one AbortController fed by the caller's signal, a timer
 * whose phase and length can change (first token, then between tokens), and for streams an
 * overall deadline that no steady trickle of chunks can push back.
 */
class CallGuard {
  readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private readonly detach: () => void;

  constructor(
    private readonly host: string,
    signal: AbortSignal | undefined,
  ) {
    const onAbort = (): void => this.controller.abort(abortError());
    if (signal?.aborted === true) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    this.detach = () => signal?.removeEventListener('abort', onAbort);
  }

  arm(phase: Exclude<TimeoutPhase, 'stream'>, ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.controller.abort(new OllamaTimeoutError(this.host, phase, ms)), ms);
    this.timer.unref?.();
  }

  /** The whole call's limit (set once). */
  armDeadline(ms: number): void {
    this.deadline = setTimeout(() => this.controller.abort(new OllamaTimeoutError(this.host, 'stream', ms)), ms);
    this.deadline.unref?.();
  }

  dispose(): void {
    clearTimeout(this.timer);
    clearTimeout(this.deadline);
    this.detach();
  }

  /** The error to throw when the call was aborted (timeout or caller), else undefined. */
  abortReason(): Error | undefined {
    if (!this.controller.signal.aborted) return undefined;
    const r: unknown = this.controller.signal.reason;
    return r instanceof Error ? r : abortError();
  }
}

function errorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e !== null && typeof e === 'object'; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

export class OllamaClient {
  readonly config: OllamaConfig;
  private readonly fetchImpl: typeof fetch;

  constructor(config: OllamaConfig, options: { fetch?: typeof fetch } = {}) {
    this.config = config;
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  get host(): string {
    return this.config.host;
  }

  /** An `ollama` client for one call: the host pinned, our signal on every request. */
  private api(guard: CallGuard): Ollama {
    const base = this.fetchImpl;
    const mine = guard.controller.signal;
    const guarded: typeof fetch = (input, init) => {
      const theirs = init?.signal ?? undefined;
      const signal = theirs ? AbortSignal.any([theirs, mine]) : mine;
      return base(input, { ...init, signal });
    };
    return new Ollama({ host: this.config.host, fetch: guarded });
  }

  /** Maps whatever the npm client or fetch threw to our typed errors. */
  private mapError(err: unknown, guard: CallGuard, endpoint: string, model: string | undefined, role: 'generation' | 'embedding', streaming: boolean): Error {
    const aborted = guard.abortReason();
    if (aborted !== undefined) return aborted;
    if (err instanceof OllamaError) return err;
    const status = (err as { status_code?: unknown }).status_code;
    const message = err instanceof Error ? err.message : String(err);
    if (typeof status === 'number') {
      if (status === 404 && model !== undefined) return new OllamaModelNotFoundError(this.host, model, role, err);
      return new OllamaRequestError(this.host, endpoint, status, message, err);
    }
    const code = errorCode(err);
    if (code !== undefined && UNREACHABLE.has(code)) {
      if (streaming) return new OllamaRequestError(this.host, endpoint, undefined, `the connection closed before the answer was complete (${code})`, err, true);
      return new OllamaNotRunningError(this.host, code, err);
    }
    if (err instanceof TypeError && /fetch failed/i.test(message)) return new OllamaNotRunningError(this.host, code, err);
    if (model !== undefined && /model ['"].*['"] not found/i.test(message)) return new OllamaModelNotFoundError(this.host, model, role, err);
    if (/Did not receive done/i.test(message)) {
      return new OllamaRequestError(this.host, endpoint, undefined, 'the stream ended before the answer was complete', err, true);
    }
    return new OllamaRequestError(this.host, endpoint, undefined, message, err);
  }

  private async call<T>(
    endpoint: string,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    run: (api: Ollama) => Promise<T>,
    model?: string,
    role: 'generation' | 'embedding' = 'generation',
  ): Promise<T> {
    const guard = new CallGuard(this.host, signal);
    guard.arm('request', timeoutMs);
    try {
      const reason = guard.abortReason();
      if (reason !== undefined) throw reason;
      return await run(this.api(guard));
    } catch (err) {
      throw this.mapError(err, guard, endpoint, model, role, false);
    } finally {
      guard.dispose();
    }
  }

  /** GET /api/version: the server's version string. Fails with OllamaNotRunningError when down. */
  async version(signal?: AbortSignal): Promise<string> {
    const res = await this.call('/api/version', this.config.requestTimeoutMs, signal, (api) => api.version());
    return String(res.version ?? '');
  }

  /** GET /api/tags: the installed models. */
  async listModels(signal?: AbortSignal): Promise<ModelSummary[]> {
    const res = await this.call('/api/tags', this.config.requestTimeoutMs, signal, (api) => api.list());
    return (res.models ?? []).map((m) => ({ name: m.name, model: m.model, digest: m.digest, size: m.size }));
  }

  /** POST /api/show: template, modelfile (FROM line = GGUF path on the Ollama machine), details. */
  async show(model: string, signal?: AbortSignal, role: 'generation' | 'embedding' = 'generation'): Promise<ShowInfo> {
    const res = await this.call('/api/show', this.config.requestTimeoutMs, signal, (api) => api.show({ model }), model, role);
    const r = res as unknown as Record<string, unknown>;
    return {
      modelfile: typeof r.modelfile === 'string' ? r.modelfile : '',
      template: typeof r.template === 'string' ? r.template : '',
      parameters: typeof r.parameters === 'string' ? r.parameters : '',
      capabilities: Array.isArray(r.capabilities) ? r.capabilities.map(String) : [],
      details: (r.details as Record<string, unknown> | undefined) ?? {},
      modelInfo: (r.model_info as Record<string, unknown> | undefined) ?? {},
    };
  }

  /** Throws OllamaVersionTooOldError when the server predates log-probabilities. */
  async requireLogprobsVersion(signal?: AbortSignal): Promise<string> {
    const v = await this.version(signal);
    if (!versionAtLeast(v, MIN_LOGPROBS_VERSION)) throw new OllamaVersionTooOldError(this.host, v);
    return v;
  }

  /**
   * POST /api/generate with `stream: true`. `onChunk` sees every NDJSON object (its numbers
   * checked first); returning STOP_STREAM closes the connection and resolves with what arrived so
   * far. The first chunk may take up to firstTokenTimeoutMs (model load), later ones
   * idleTimeoutMs each, the whole stream streamDeadlineMs. Once maxResponseChars of text have
   * arrived the stream is closed and the result ends with doneReason 'length'.
   */
  async generateStream(
    body: GenerateBody,
    onChunk?: (chunk: GenerateChunk) => void | typeof STOP_STREAM,
    signal?: AbortSignal,
  ): Promise<GenerateResult> {
    const guard = new CallGuard(this.host, signal);
    guard.arm('first-token', this.config.firstTokenTimeoutMs);
    guard.armDeadline(this.config.streamDeadlineMs);
    let started = false;
    let text = '';
    const logprobs: OllamaLogprob[] = [];
    let doneReason = '';
    let evalCount: number | undefined;
    let promptEvalCount: number | undefined;
    try {
      const reason = guard.abortReason();
      if (reason !== undefined) throw reason;
      const stream = await this.api(guard).generate({ ...body, stream: true });
      started = true;
      for await (const part of stream) {
        guard.arm('next-token', this.config.idleTimeoutMs);
        const chunk = checkedChunk(part, this.host);
        text += chunk.response;
        if (chunk.logprobs) logprobs.push(...chunk.logprobs);
        if (text.length >= this.config.maxResponseChars && !chunk.done) {
          stream.abort();
          text = text.slice(0, this.config.maxResponseChars);
          doneReason = 'length';
          break;
        }
        if (chunk.done) {
          doneReason = chunk.done_reason ?? 'stop';
          evalCount = chunk.eval_count;
          promptEvalCount = chunk.prompt_eval_count;
        }
        if (onChunk?.(chunk) === STOP_STREAM && !chunk.done) {
          stream.abort();
          doneReason = 'aborted-by-caller';
          break;
        }
        if (chunk.done) break;
      }
      const reason2 = guard.abortReason();
      if (reason2 !== undefined) throw reason2;
      return { text, doneReason, logprobs, evalCount, promptEvalCount };
    } catch (err) {
      throw this.mapError(err, guard, '/api/generate', body.model, 'generation', started);
    } finally {
      guard.dispose();
    }
  }

  /** POST /api/embed (batched input). The timeout is the first-token one: it may load a model. */
  async embed(model: string, input: ReadonlyArray<string>, signal?: AbortSignal): Promise<number[][]> {
    const res = await this.call(
      '/api/embed',
      this.config.firstTokenTimeoutMs,
      signal,
      (api) => api.embed({ model, input: [...input], truncate: true, keep_alive: this.config.keepAlive }),
      model,
      'embedding',
    );
    if (!Array.isArray(res.embeddings) || res.embeddings.length !== input.length) {
      throw new OllamaRequestError(this.host, '/api/embed', undefined, `expected ${input.length} embeddings, got ${res.embeddings?.length ?? 0}`);
    }
    const dims = (res.embeddings[0] as unknown[] | undefined)?.length;
    res.embeddings.forEach((v: unknown, i) => {
      if (!Array.isArray(v) || v.length === 0 || v.length !== dims) throw new OllamaInvalidAnswerError(this.host, '/api/embed', `embedding ${i} is not a vector of ${dims} numbers`);
      const bad = v.findIndex((x) => typeof x !== 'number' || !Number.isFinite(x));
      if (bad >= 0) throw new OllamaInvalidAnswerError(this.host, '/api/embed', `embedding ${i} has ${describeValue(v[bad])} at position ${bad}`);
    });
    return res.embeddings;
  }
}

function describeValue(v: unknown): string {
  if (typeof v === 'string') return `the string ${JSON.stringify(v.slice(0, 20))}`;
  if (typeof v === 'number') return String(v);
  return v === null ? 'null' : typeof v;
}

/** A log-probability as Ollama must send it: a finite number ≤ 0. */
function checkLogprob(v: unknown, host: string, where: string): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v > 0) {
    throw new OllamaInvalidAnswerError(host, '/api/generate', `${where} is ${describeValue(v)}, not a log-probability (a finite number ≤ 0)`);
  }
}

/** One NDJSON object of a generate stream, its types and numbers checked (nothing unchecked reaches a score). */
function checkedChunk(part: unknown, host: string): GenerateChunk {
  const c = part as Record<string, unknown>;
  if (typeof c !== 'object' || c === null) throw new OllamaInvalidAnswerError(host, '/api/generate', 'a stream line is not an object');
  const response = c.response ?? '';
  if (typeof response !== 'string') throw new OllamaInvalidAnswerError(host, '/api/generate', `"response" is ${describeValue(response)}`);
  const entries = c.logprobs;
  if (entries !== undefined && entries !== null) {
    if (!Array.isArray(entries)) throw new OllamaInvalidAnswerError(host, '/api/generate', '"logprobs" is not a list');
    entries.forEach((e: Record<string, unknown>, i) => {
      if (typeof e !== 'object' || e === null || typeof e.token !== 'string') throw new OllamaInvalidAnswerError(host, '/api/generate', `logprobs[${i}] has no token text`);
      checkLogprob(e.logprob, host, `logprobs[${i}].logprob`);
      const top = e.top_logprobs;
      if (top !== undefined && top !== null) {
        if (!Array.isArray(top)) throw new OllamaInvalidAnswerError(host, '/api/generate', `logprobs[${i}].top_logprobs is not a list`);
        top.forEach((t: Record<string, unknown>, j) => {
          if (typeof t !== 'object' || t === null || typeof t.token !== 'string') throw new OllamaInvalidAnswerError(host, '/api/generate', `logprobs[${i}].top_logprobs[${j}] has no token text`);
          checkLogprob(t.logprob, host, `logprobs[${i}].top_logprobs[${j}].logprob`);
        });
      }
    });
  }
  return { ...(c as unknown as GenerateChunk), response, ...(entries === null ? { logprobs: undefined } : {}) };
}

/**
 * Compares dotted versions numerically ("0.12.11" >= "0.12.9"). Pre-release suffixes count as
 * the release itself; an unparsable or development version ("0.0.0", "") is given the benefit of
 * the doubt (true), since development builds carry the newest API.
 */
export function versionAtLeast(version: string, required: string): boolean {
  const parse = (v: string): number[] | undefined => {
    const m = /^v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(v.trim());
    return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
  };
  const have = parse(version);
  const need = parse(required);
  if (have === undefined || need === undefined) return true;
  if (have.every((n) => n === 0)) return true;
  for (let i = 0; i < 3; i++) {
    if (have[i]! !== need[i]!) return have[i]! > need[i]!;
  }
  return true;
}

/** The `FROM` path of a modelfile (what /api/show reports): the GGUF blob on the Ollama machine. */
export function modelfileFromPath(modelfile: string): string | undefined {
  for (const raw of modelfile.split(/\r?\n/)) {
    const m = /^\s*FROM\s+(.+?)\s*$/i.exec(raw);
    if (m === null) continue;
    let p = m[1]!;
    if ((p.startsWith('"') && p.endsWith('"')) || (p.startsWith("'") && p.endsWith("'"))) p = p.slice(1, -1);
    return p;
  }
  return undefined;
}
