/**
 * A client for vLLM's OpenAI-compatible server (`vllm serve <model>`), and for other servers that
 * speak the same routes: GET /v1/models, POST /v1/completions (batched prompts, `prompt_logprobs`,
 * SSE streaming), POST /tokenize and /detokenize (vLLM's own routes, at the server root).
 *
 * Like the Ollama client: one configured base URL and nothing else, a deadline on every call
 * (short for metadata and tokenizing, long for a scoring batch, first-token then idle limits for
 * streams), cancellation through AbortSignal, and typed errors that say what to do. Unlike it,
 * requests that fail before the server did any work (connection refused or reset, HTTP 429, 502,
 * 503, 504) are retried a bounded number of times: every request here is idempotent, and a shared
 * server behind a load balancer answers those while a replica restarts.
 */
import { abortError, sleep } from '../../core/ports';
import { detectPromptFormat, type PromptFormat } from '../promptFormat';
import { numberDefault, stringDefault } from '../../shared/settingsManifest';

export interface VllmConfig {
  /** Server root, e.g. http://gpu-box:8000 (a trailing /v1 is removed; a proxy path prefix is kept). */
  readonly baseUrl: string;
  /** Served model name ('' = the server's only model, from /v1/models). */
  readonly model: string;
  /** Sent as `Authorization: Bearer <key>` when not empty (`vllm serve --api-key`). */
  readonly apiKey: string;
  /** Limit for /v1/models, /tokenize and /detokenize. */
  readonly requestTimeoutMs: number;
  /** Limit for one scoring batch (a greedy round: ~90 sequences). */
  readonly scoreTimeoutMs: number;
  /** Limit until the first streamed chunk of a generation arrives. */
  readonly firstTokenTimeoutMs: number;
  /** Limit between two streamed chunks. */
  readonly idleTimeoutMs: number;
  /** Retries of a request that failed before the server worked on it (default 2). */
  readonly retries: number;
  /** Wait before the first retry; doubled for each further one (default 500 ms). */
  readonly retryDelayMs: number;
}

/** Defaults of a client built without settings: the declared settings' defaults where there is one. */
const VLLM_DEFAULTS = {
  baseUrl: stringDefault('vllm.url'),
  model: stringDefault('vllm.model'),
  apiKey: '',
  requestTimeoutMs: 15_000,
  scoreTimeoutMs: 1000 * numberDefault('vllm.timeoutSeconds'),
  firstTokenTimeoutMs: 1000 * numberDefault('vllm.timeoutSeconds'),
  idleTimeoutMs: 60_000,
  retries: 2,
  retryDelayMs: 500,
} as const;

/** The server root from what a user typed: scheme added, trailing slashes and `/v1` removed. */
function normalizeVllmUrl(value: string): string {
  let s = value.trim();
  if (s === '') return VLLM_DEFAULTS.baseUrl;
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) s = `http://${s}`;
  const url = new URL(s);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new VllmError('config', s, `The vLLM URL ${s} is not http or https.`, 'Set `exact.vllm.url` to the server address, e.g. http://gpu-box:8000.');
  const path = url.pathname.replace(/\/+$/, '').replace(/\/v1$/, '');
  return `${url.protocol}//${url.host}${path}`;
}

export function resolveVllmConfig(partial: Partial<VllmConfig> = {}): VllmConfig {
  const positive = (n: number | undefined, d: number): number => (n !== undefined && Number.isFinite(n) && n > 0 ? Math.min(n, 2 ** 31 - 1) : d);
  const count = (n: number | undefined, d: number): number => (n !== undefined && Number.isInteger(n) && n >= 0 ? Math.min(n, 10) : d);
  return {
    baseUrl: normalizeVllmUrl(partial.baseUrl ?? ''),
    model: (partial.model ?? VLLM_DEFAULTS.model).trim(),
    apiKey: (partial.apiKey ?? '').trim(),
    requestTimeoutMs: positive(partial.requestTimeoutMs, VLLM_DEFAULTS.requestTimeoutMs),
    scoreTimeoutMs: positive(partial.scoreTimeoutMs, VLLM_DEFAULTS.scoreTimeoutMs),
    firstTokenTimeoutMs: positive(partial.firstTokenTimeoutMs, VLLM_DEFAULTS.firstTokenTimeoutMs),
    idleTimeoutMs: positive(partial.idleTimeoutMs, VLLM_DEFAULTS.idleTimeoutMs),
    retries: count(partial.retries, VLLM_DEFAULTS.retries),
    retryDelayMs: positive(partial.retryDelayMs, VLLM_DEFAULTS.retryDelayMs),
  };
}

export type VllmErrorKind =
  | 'config'
  | 'unreachable'
  | 'timeout'
  | 'unauthorized'
  | 'model-not-found'
  | 'rejected'
  | 'server'
  | 'bad-response'
  | 'no-prompt-logprobs';

/**
 * Everything that can go wrong with the server. `indexingClass` tells the background indexer
 * whether to retry later ('transient'), skip the pair ('pair') or stop until the user acts ('fatal').
 */
export class VllmError extends Error {
  override readonly name = 'VllmError';
  readonly indexingClass: 'transient' | 'pair' | 'fatal';

  constructor(
    readonly kind: VllmErrorKind,
    readonly host: string,
    message: string,
    readonly action: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.indexingClass =
      kind === 'unreachable' || kind === 'timeout' || kind === 'server'
        ? 'transient'
        : kind === 'rejected'
          ? 'pair'
          : 'fatal';
  }

  get userMessage(): string {
    return `${this.message} ${this.action}`;
  }
}

const RETRY_STATUS = new Set([429, 502, 503, 504]);

const UNREACHABLE = /ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|EPIPE|UND_ERR_SOCKET|UND_ERR_CONNECT_TIMEOUT|UND_ERR_CLOSED|fetch failed|other side closed/i;

function causeText(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e !== null && typeof e === 'object'; depth++) {
    const x = e as { code?: unknown; message?: unknown; cause?: unknown };
    if (typeof x.code === 'string') parts.push(x.code);
    if (typeof x.message === 'string') parts.push(x.message);
    e = x.cause;
  }
  return parts.join(' ');
}

/** The message of an error body in any of the shapes vLLM has used. */
function serverMessage(body: string): string {
  try {
    const j = JSON.parse(body) as { error?: unknown; message?: unknown; detail?: unknown };
    if (typeof j.error === 'object' && j.error !== null && typeof (j.error as { message?: unknown }).message === 'string') return (j.error as { message: string }).message;
    if (typeof j.error === 'string') return j.error;
    if (typeof j.message === 'string') return j.message;
    if (typeof j.detail === 'string') return j.detail;
  } catch {
    // not JSON: the text itself
  }
  return body.slice(0, 500);
}

/** One model entry of GET /v1/models. */
export interface VllmModel {
  readonly id: string;
  readonly maxModelLen: number | undefined;
}

/** One choice of a non-streamed /v1/completions answer, as far as EXACT reads it. */
export interface CompletionChoice {
  readonly index: number;
  readonly text: string;
  readonly finishReason: string | null;
  /** vLLM's `prompt_logprobs`: per prompt token (the first is null) a map token id -> log p. */
  readonly promptLogprobs: unknown;
  /** vLLM >= 0.10.2 with `return_token_ids`: the prompt's token ids. */
  readonly promptTokenIds: unknown;
}

export interface StreamResult {
  readonly text: string;
  readonly finishReason: string | null;
}

type Phase = 'request' | 'first-token' | 'next-token';

export class VllmClient {
  readonly config: VllmConfig;
  private readonly fetchImpl: typeof fetch;
  private servedModel: Promise<string> | undefined;
  private format: Promise<PromptFormat> | undefined;
  /** HTTP requests sent (retries included): what the request budget of a choice counts. */
  requestCount = 0;

  constructor(config: VllmConfig, options: { fetch?: typeof fetch } = {}) {
    this.config = config;
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  get host(): string {
    return this.config.baseUrl;
  }

  private timeoutError(phase: Phase, ms: number): VllmError {
    const what = phase === 'first-token' ? 'the first token' : phase === 'next-token' ? 'the next token' : 'an answer';
    return new VllmError(
      'timeout',
      this.host,
      `The vLLM server at ${this.host} sent no ${what} within ${Math.round(ms / 1000)} s.`,
      phase === 'request'
        ? 'The server may be busy with other users or still loading the model; EXACT tries again later. Raise `exact.vllm.timeoutSeconds` for very long scoring batches.'
        : 'Check the server log (`vllm serve` output) for errors or memory trouble, then try again.',
    );
  }

  private unreachable(err: unknown): VllmError {
    return new VllmError(
      'unreachable',
      this.host,
      `The vLLM server is not reachable at ${this.host} (${causeText(err).slice(0, 200)}).`,
      'Start it (`vllm serve <model> --host 0.0.0.0 --port 8000`) or fix `exact.vllm.url`; EXACT retries when it is back.',
      undefined,
      { cause: err },
    );
  }

  private httpError(status: number, path: string, body: string): VllmError {
    const msg = serverMessage(body);
    const where = `The vLLM server at ${this.host} answered ${path} with HTTP ${status}: ${msg}`;
    if (status === 401 || status === 403) {
      return new VllmError('unauthorized', this.host, where, 'Set the server\'s API key with the command *EXACT: Set vLLM API Key* (it is kept in VS Code\'s secret storage).', status);
    }
    if (status === 404 && /model/i.test(msg)) {
      return new VllmError('model-not-found', this.host, where, 'Set `exact.vllm.model` to a name the server serves (`curl <url>/v1/models` lists them), or leave it empty to use its only model.', status);
    }
    if (status === 404) {
      return new VllmError('rejected', this.host, where, `This server has no ${path} route: EXACT needs vLLM's OpenAI-compatible server (\`vllm serve\`), version 0.6 or newer.`, status);
    }
    if (status >= 500 || RETRY_STATUS.has(status)) {
      return new VllmError('server', this.host, where, 'The server failed or is overloaded; EXACT tries again later. The server log (`vllm serve` output) says why.', status);
    }
    return new VllmError('rejected', this.host, where, 'The request was refused as invalid: see the message; a prompt longer than the server\'s --max-model-len is the usual cause.', status);
  }

  /**
   * Sends one request, retrying connection failures and 429/502/503/504. Returns the response
   * (status 2xx) with the deadline still armed for reading its body; `done()` must be called.
   */
  private async send(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    timeoutMs: number,
    phase: Phase,
    signal: AbortSignal | undefined,
  ): Promise<{ response: Response; controller: AbortController; rearm: (phase: Phase, ms: number) => void; done: () => void }> {
    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted === true) throw abortError();
      const controller = new AbortController();
      let timer: NodeJS.Timeout | undefined;
      let timedOut: VllmError | undefined;
      const rearm = (p: Phase, ms: number): void => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          timedOut = this.timeoutError(p, ms);
          controller.abort(timedOut);
        }, ms);
        timer.unref?.();
      };
      const onAbort = (): void => controller.abort(abortError());
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      rearm(phase, timeoutMs);
      let retryAfterMs: number | undefined;
      let failure: VllmError;
      try {
        const headers: Record<string, string> = { Accept: 'application/json' };
        if (body !== undefined) headers['Content-Type'] = 'application/json';
        if (this.config.apiKey !== '') headers.Authorization = `Bearer ${this.config.apiKey}`;
        this.requestCount += 1;
        const response = await this.fetchImpl(`${this.host}${path}`, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: controller.signal,
        });
        if (response.ok) return { response, controller, rearm, done };
        const text = await response.text().catch(() => '');
        failure = this.httpError(response.status, path, text);
        const ra = Number(response.headers.get('retry-after'));
        if (Number.isFinite(ra) && ra > 0) retryAfterMs = Math.min(ra * 1000, 10_000);
        done();
        if (!RETRY_STATUS.has(response.status)) throw failure;
      } catch (err) {
        done();
        if (aborted(signal)) throw abortError();
        if (timedOut !== undefined) throw timedOut;
        if (err instanceof VllmError) throw err;
        if (!UNREACHABLE.test(causeText(err))) throw new VllmError('bad-response', this.host, `The request to ${this.host}${path} failed: ${causeText(err).slice(0, 300)}`, 'Check `exact.vllm.url`.', undefined, { cause: err });
        failure = this.unreachable(err);
      }
      if (attempt >= this.config.retries) throw failure;
      await sleep(retryAfterMs ?? this.config.retryDelayMs * 2 ** attempt, signal);
    }
  }

  /** What went wrong while an answer was read: the caller's cancellation, the deadline, or the connection. */
  private readFailure(err: unknown, controller: AbortController, signal: AbortSignal | undefined): Error {
    if (aborted(signal)) return abortError();
    const reason: unknown = controller.signal.reason;
    if (controller.signal.aborted && reason instanceof VllmError) return reason;
    if (err instanceof VllmError) return err;
    return this.unreachable(err);
  }

  /** A JSON request; the body is read under the same deadline. */
  private async json(method: 'GET' | 'POST', path: string, body: unknown, timeoutMs: number, signal: AbortSignal | undefined): Promise<unknown> {
    const { response, controller, done } = await this.send(method, path, body, timeoutMs, 'request', signal);
    try {
      const text = await response.text();
      try {
        return JSON.parse(text) as unknown;
      } catch {
        throw new VllmError('bad-response', this.host, `The server at ${this.host} answered ${path} with something that is not JSON: ${text.slice(0, 200)}`, 'Check that `exact.vllm.url` points at a vLLM server and not at another web service.');
      }
    } catch (err) {
      throw this.readFailure(err, controller, signal);
    } finally {
      done();
    }
  }

  /** A malformed answer: the server is not what EXACT expects. */
  badResponse(path: string, problem: string): VllmError {
    return new VllmError('bad-response', this.host, `The server at ${this.host} sent an invalid answer to ${path}: ${problem}.`, 'EXACT needs vLLM\'s OpenAI-compatible server (`vllm serve`); a proxy in between may alter answers.');
  }

  /** GET /v1/models. */
  async models(signal?: AbortSignal): Promise<VllmModel[]> {
    const res = (await this.json('GET', '/v1/models', undefined, this.config.requestTimeoutMs, signal)) as { data?: unknown };
    if (!Array.isArray(res.data)) throw this.badResponse('/v1/models', 'no `data` list');
    return res.data.map((m: unknown) => {
      const x = m as { id?: unknown; max_model_len?: unknown };
      if (typeof x.id !== 'string' || x.id === '') throw this.badResponse('/v1/models', 'a model without an id');
      return { id: x.id, maxModelLen: typeof x.max_model_len === 'number' && Number.isInteger(x.max_model_len) ? x.max_model_len : undefined };
    });
  }

  /** The model name to send: the setting, else the server's only model (asked once). */
  model(signal?: AbortSignal): Promise<string> {
    if (this.config.model !== '') return Promise.resolve(this.config.model);
    if (this.servedModel === undefined) {
      const p = this.models(signal).then((list) => {
        if (list.length === 1) return list[0]!.id;
        throw new VllmError(
          'model-not-found',
          this.host,
          list.length === 0 ? `The vLLM server at ${this.host} serves no model.` : `The vLLM server at ${this.host} serves ${list.length} models (${list.map((m) => m.id).join(', ')}).`,
          'Set `exact.vllm.model` to the one EXACT should use.',
        );
      });
      p.catch(() => {
        if (this.servedModel === p) this.servedModel = undefined;
      });
      this.servedModel = p;
    }
    return this.servedModel;
  }

  /**
   * The model's prompt format, detected once from its chat template: vLLM applies the template
   * to a probe message in /tokenize and returns the token strings, where the turn markers show
   * (an older server without token strings: /detokenize). A model without a chat template
   * (vLLM refuses the chat form) uses the plain format.
   */
  promptFormat(signal?: AbortSignal): Promise<PromptFormat> {
    if (this.format === undefined) {
      const p = (async () => {
        let probe: { tokens: number[]; tokenStrings: string[] | undefined };
        try {
          probe = await this.tokenizeChat('x', signal);
        } catch (e) {
          if (e instanceof VllmError && e.kind === 'rejected' && e.status === 400) return detectPromptFormat(undefined);
          throw e;
        }
        const text = probe.tokenStrings !== undefined ? probe.tokenStrings.join('') : await this.detokenize(probe.tokens, signal);
        return detectPromptFormat(text);
      })();
      p.catch(() => {
        if (this.format === p) this.format = undefined;
      });
      this.format = p;
    }
    return this.format;
  }

  /** POST /tokenize: token ids of a text, special-token strings parsed, nothing added (no BOS). */
  async tokenize(text: string, signal?: AbortSignal): Promise<number[]> {
    const model = await this.model(signal);
    const res = (await this.json('POST', '/tokenize', { model, prompt: text, add_special_tokens: false }, this.config.requestTimeoutMs, signal)) as { tokens?: unknown };
    return this.tokenIds('/tokenize', res.tokens);
  }

  /** POST /tokenize with chat messages: the model's chat template applied (for detecting the prompt format). */
  async tokenizeChat(content: string, signal?: AbortSignal): Promise<{ tokens: number[]; tokenStrings: string[] | undefined }> {
    const model = await this.model(signal);
    const res = (await this.json(
      'POST',
      '/tokenize',
      { model, messages: [{ role: 'user', content }], add_generation_prompt: true, return_token_strs: true },
      this.config.requestTimeoutMs,
      signal,
    )) as { tokens?: unknown; token_strs?: unknown };
    const tokens = this.tokenIds('/tokenize', res.tokens);
    const strs = Array.isArray(res.token_strs) && res.token_strs.every((s) => typeof s === 'string') ? (res.token_strs as string[]) : undefined;
    return { tokens, tokenStrings: strs };
  }

  /** POST /detokenize. */
  async detokenize(tokens: ReadonlyArray<number>, signal?: AbortSignal): Promise<string> {
    const model = await this.model(signal);
    const res = (await this.json('POST', '/detokenize', { model, tokens }, this.config.requestTimeoutMs, signal)) as { prompt?: unknown };
    if (typeof res.prompt !== 'string') throw this.badResponse('/detokenize', 'no `prompt` text');
    return res.prompt;
  }

  tokenIds(path: string, value: unknown): number[] {
    if (!Array.isArray(value)) throw this.badResponse(path, 'no `tokens` list');
    for (const t of value) if (!Number.isSafeInteger(t) || (t as number) < 0) throw this.badResponse(path, `a token id that is not a non-negative integer (${JSON.stringify(t)})`);
    return value as number[];
  }

  /** POST /v1/completions, not streamed: the choices ordered by their index. */
  async completions(body: Record<string, unknown>, signal?: AbortSignal): Promise<CompletionChoice[]> {
    const model = await this.model(signal);
    const res = (await this.json('POST', '/v1/completions', { ...body, model, stream: false }, this.config.scoreTimeoutMs, signal)) as { choices?: unknown };
    if (!Array.isArray(res.choices)) throw this.badResponse('/v1/completions', 'no `choices` list');
    const choices = res.choices.map((c: unknown): CompletionChoice => {
      const x = c as { index?: unknown; text?: unknown; finish_reason?: unknown; prompt_logprobs?: unknown; prompt_token_ids?: unknown };
      if (typeof x !== 'object' || x === null || !Number.isSafeInteger(x.index)) throw this.badResponse('/v1/completions', 'a choice without an integer `index`');
      return {
        index: x.index as number,
        text: typeof x.text === 'string' ? x.text : '',
        finishReason: typeof x.finish_reason === 'string' ? x.finish_reason : null,
        promptLogprobs: x.prompt_logprobs,
        promptTokenIds: x.prompt_token_ids,
      };
    });
    return choices.sort((a, b) => a.index - b.index);
  }

  /**
   * POST /v1/completions with `stream: true` (server-sent events, `data: {...}` per chunk, then
   * `data: [DONE]`). `onText` sees each piece of text as it arrives.
   */
  async completionStream(body: Record<string, unknown>, onText: (text: string) => void, signal?: AbortSignal): Promise<StreamResult> {
    const model = await this.model(signal);
    const path = '/v1/completions';
    const { response, controller, rearm, done } = await this.send('POST', path, { ...body, model, stream: true }, this.config.firstTokenTimeoutMs, 'first-token', signal);
    let text = '';
    let finishReason: string | null = null;
    let buffer = '';
    const decoder = new TextDecoder();
    let finished = false;
    const handle = (data: string): void => {
      if (data === '[DONE]') {
        finished = true;
        return;
      }
      let chunk: { choices?: unknown; error?: unknown };
      try {
        chunk = JSON.parse(data) as typeof chunk;
      } catch {
        throw this.badResponse(path, `a stream event that is not JSON (${data.slice(0, 100)})`);
      }
      if (chunk.error !== undefined) {
        const status = typeof chunk.error === 'object' && chunk.error !== null && typeof (chunk.error as { code?: unknown }).code === 'number' ? (chunk.error as { code: number }).code : 500;
        throw this.httpError(status, path, data);
      }
      if (!Array.isArray(chunk.choices)) throw this.badResponse(path, 'a stream event without `choices`');
      for (const c of chunk.choices as Array<{ text?: unknown; finish_reason?: unknown }>) {
        if (typeof c.text === 'string' && c.text !== '') {
          text += c.text;
          onText(c.text);
        }
        if (typeof c.finish_reason === 'string') finishReason = c.finish_reason;
      }
    };
    try {
      if (response.body === null) throw this.badResponse(path, 'an empty stream');
      const reader = response.body.getReader();
      let first = true;
      while (!finished) {
        const { value, done: eof } = await reader.read();
        if (eof) break;
        if (first) first = false;
        rearm('next-token', this.config.idleTimeoutMs);
        buffer += decoder.decode(value, { stream: true });
        let cut: number;
        while (!finished && (cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
          const event = buffer.slice(0, cut);
          buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, '');
          const data = event
            .split(/\r?\n/)
            .filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).trimStart())
            .join('\n');
          if (data !== '') handle(data);
        }
      }
      if (!finished) {
        throw new VllmError('server', this.host, `The vLLM server at ${this.host} closed the stream before it was complete.`, 'The server may have crashed or restarted; try again.');
      }
      await reader.cancel().catch(() => undefined);
      return { text, finishReason };
    } catch (err) {
      throw this.readFailure(err, controller, signal);
    } finally {
      controller.abort();
      done();
    }
  }
}

/** Read through a function: TypeScript would keep an earlier check's narrowing across awaits. */
function aborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}
