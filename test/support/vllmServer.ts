/**
 * A vLLM-compatible HTTP server for tests (never shipped): a real server on 127.0.0.1 (random
 * port) answering the routes of vLLM's OpenAI-compatible server (`vllm serve`) with real
 * inference on a GGUF model through LlamaEngine, like ollamaServer.ts does for Ollama.
 *
 * Routes and shapes, as vLLM documents them (vllm/entrypoints/openai/protocol.py):
 *  - GET /v1/models: {object: "list", data: [{id, object: "model", created, owned_by, root, parent, max_model_len, permission}]}
 *  - POST /tokenize {model?, prompt, add_special_tokens?, return_token_strs?} or {model?, messages,
 *    add_generation_prompt?, return_token_strs?} -> {count, max_model_len, tokens, token_strs?}
 *  - POST /detokenize {model?, tokens} -> {prompt}
 *  - POST /v1/completions {model, prompt: string | string[] | int[] | int[][], max_tokens (default
 *    16, >= 1), temperature, top_p, top_k, seed, stop, n (1), stream, prompt_logprobs (>= 0, not
 *    with stream), add_special_tokens, return_token_ids} -> {id, object: "text_completion",
 *    created, model, choices: [{index, text, logprobs, finish_reason, stop_reason,
 *    prompt_logprobs?, prompt_token_ids?}], usage}. `prompt_logprobs` has one entry per prompt
 *    token, null for the first, else {"<id>": {logprob, rank, decoded_token}} with the prompt's own
 *    token (and no alternatives: this server refuses prompt_logprobs > 0).
 *    Streaming: server-sent events `data: {..., object: "text_completion", choices: [{index,
 *    text, logprobs, finish_reason, stop_reason}]}` and finally `data: [DONE]`.
 *  - Errors: HTTP status with {error: {message, type, param, code}}; an unknown model is 404
 *    "The model `x` does not exist."; with an API key set, a missing or wrong bearer token is 401.
 *
 * Where it differs from vLLM: tokenization is llama.cpp's (special-token strings parsed, no BOS
 * added for the fixture, whose file asks for none); `rank` is null (it would need the whole
 * distribution); log-probabilities are clamped at the engine's floor (-100).
 *
 * Switches: `promptLogprobs = false` plays an OpenAI-compatible server that ignores the field;
 * `garbage` corrupts the next scored answer's numbers; `failNext` answers the next requests with
 * an HTTP error; `delayMs` holds answers back (timeouts); `setDown('refuse')` closes the listener.
 * Every request is recorded.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LlamaEngine } from '../../src/engines/llama/llamaEngine';
import { LocalHttpServer } from './localHttpServer';

export interface VllmRecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly body: unknown;
  readonly headers: IncomingMessage['headers'];
}

export type Garbage = 'null' | 'string' | 'positive' | 'nan-literal' | 'missing-entry';

export interface VllmTestServerOptions {
  readonly engine: LlamaEngine;
  /** Served model name (default 'exact-tiny'). */
  readonly model?: string;
  /** Require `Authorization: Bearer <apiKey>` (vllm serve --api-key). */
  readonly apiKey?: string;
}

interface CompletionBody {
  model?: unknown;
  prompt?: unknown;
  max_tokens?: unknown;
  temperature?: unknown;
  top_p?: unknown;
  top_k?: unknown;
  seed?: unknown;
  stop?: unknown;
  n?: unknown;
  stream?: unknown;
  prompt_logprobs?: unknown;
  add_special_tokens?: unknown;
  return_token_ids?: unknown;
  echo?: unknown;
  logprobs?: unknown;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = status === 404 ? 'NotFoundError' : status === 401 ? 'Unauthorized' : 'BadRequestError',
  ) {
    super(message);
  }
}

const isIntList = (v: unknown): v is number[] => Array.isArray(v) && v.every((t) => Number.isSafeInteger(t) && (t as number) >= 0);

export class VllmTestServer {
  readonly requests: VllmRecordedRequest[] = [];
  /** false: answer like a server without prompt log-probabilities (the field is ignored). */
  promptLogprobs = true;
  /** Corrupts the numbers of the next completions answer that carries prompt log-probabilities. */
  garbage: Garbage | undefined;
  /** The next `count` requests get this HTTP status (vLLM's error body). */
  failNext: { status: number; count: number } | undefined;
  /** Answers wait this long before being written. */
  delayMs = 0;

  private readonly engine: LlamaEngine;
  private readonly modelName: string;
  private readonly apiKey: string | undefined;
  private readonly http: LocalHttpServer;
  private serial = 0;

  private constructor(options: VllmTestServerOptions) {
    this.engine = options.engine;
    this.modelName = options.model ?? 'exact-tiny';
    this.apiKey = options.apiKey;
    this.http = new LocalHttpServer((req, res) => void this.handle(req, res));
  }

  static async start(options: VllmTestServerOptions): Promise<VllmTestServer> {
    const s = new VllmTestServer(options);
    await s.http.listen(0);
    return s;
  }

  get url(): string {
    return this.http.url;
  }

  get model(): string {
    return this.modelName;
  }

  requestsTo(path: string): VllmRecordedRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  /** 'refuse' closes the listener (ECONNREFUSED); false listens again on the same port. */
  async setDown(mode: 'refuse' | false): Promise<void> {
    if (mode === 'refuse') await this.http.stop();
    else if (!this.http.listening) await this.http.listen();
  }

  close(): Promise<void> {
    return this.http.stop();
  }

  // -------------------------------------------------------------------------------------------

  private send(res: ServerResponse, status: number, body: unknown, raw?: string): void {
    const text = raw ?? JSON.stringify(body);
    if (res.destroyed) return;
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  private sendError(res: ServerResponse, e: HttpError): void {
    this.send(res, e.status, { error: { message: e.message, type: e.type, param: null, code: e.status } });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const path = (req.url ?? '/').split('?')[0]!;
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      this.requests.push({ method, path, body: text, headers: req.headers });
      return this.sendError(res, new HttpError(400, 'Invalid JSON body'));
    }
    this.requests.push({ method, path, body, headers: req.headers });
    if (this.delayMs > 0) {
      await new Promise((r) => setTimeout(r, this.delayMs));
      if (res.destroyed || req.destroyed) return;
    }
    try {
      if (this.apiKey !== undefined && req.headers.authorization !== `Bearer ${this.apiKey}`) throw new HttpError(401, 'Unauthorized');
      if (this.failNext !== undefined && this.failNext.count > 0) {
        this.failNext.count -= 1;
        throw new HttpError(this.failNext.status, `Simulated failure (HTTP ${this.failNext.status}).`, 'InternalServerError');
      }
      const route = `${method} ${path}`;
      if (route === 'GET /v1/models') return this.send(res, 200, this.models());
      if (route === 'GET /health') return this.send(res, 200, {});
      if (route === 'POST /tokenize') return this.send(res, 200, this.tokenize(body as Record<string, unknown>));
      if (route === 'POST /detokenize') return this.send(res, 200, this.detokenize(body as Record<string, unknown>));
      if (route === 'POST /v1/completions') return await this.completions(req, res, body as CompletionBody);
      throw new HttpError(404, 'Not Found', 'NotFound');
    } catch (e) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      this.sendError(res, e instanceof HttpError ? e : new HttpError(500, e instanceof Error ? e.message : String(e), 'InternalServerError'));
    }
  }

  private checkModel(model: unknown, required: boolean): void {
    if (model === undefined || model === null) {
      if (required) throw new HttpError(400, '`model` is required');
      return;
    }
    if (model !== this.modelName) throw new HttpError(404, `The model \`${String(model)}\` does not exist.`);
  }

  private models(): unknown {
    return {
      object: 'list',
      data: [
        {
          id: this.modelName,
          object: 'model',
          created: Math.floor(Date.now() / 1000),
          owned_by: 'vllm',
          root: this.engine.modelInfo.path,
          parent: null,
          max_model_len: this.engine.modelInfo.contextSize,
          permission: [],
        },
      ],
    };
  }

  /** Text to ids as vLLM does with add_special_tokens (BOS only for models that ask for it; the fixture does not). */
  private tokens(text: string): number[] {
    return this.engine.tokenize(text, true);
  }

  private tokenize(body: Record<string, unknown>): unknown {
    if (typeof body !== 'object' || body === null) throw new HttpError(400, 'body must be an object');
    this.checkModel(body.model, false);
    let ids: number[];
    if (Array.isArray(body.messages)) {
      const format = this.engine.promptFormat;
      // The chat template applied (vLLM renders the model's Jinja template; the fixture's is ChatML).
      if (format.id === 'plain') throw new HttpError(400, 'This model has no chat template.');
      const content = body.messages.map((m: unknown) => String((m as { content?: unknown }).content ?? '')).join('\n');
      ids = this.tokens(format.head + content + (body.add_generation_prompt === false ? format.end : format.tail));
    } else if (typeof body.prompt === 'string') {
      ids = this.tokens(body.prompt);
    } else {
      throw new HttpError(400, '`prompt` (a string) or `messages` is required');
    }
    return {
      count: ids.length,
      max_model_len: this.engine.modelInfo.contextSize,
      tokens: ids,
      ...(body.return_token_strs === true ? { token_strs: ids.map((id) => this.engine.detokenize([id], true)) } : {}),
    };
  }

  private detokenize(body: Record<string, unknown>): unknown {
    this.checkModel(body?.model, false);
    if (!isIntList(body?.tokens)) throw new HttpError(400, '`tokens` must be a list of token ids');
    return { prompt: this.engine.detokenize(body.tokens, true) };
  }

  private validate(body: CompletionBody): { prompts: number[][]; texts: Array<string | undefined>; maxTokens: number } {
    if (typeof body !== 'object' || body === null) throw new HttpError(400, 'body must be an object');
    this.checkModel(body.model, true);
    const p = body.prompt;
    let list: Array<string | number[]>;
    if (typeof p === 'string') list = [p];
    else if (isIntList(p) && p.length > 0) list = [p];
    else if (Array.isArray(p) && p.length > 0 && p.every((x) => typeof x === 'string')) list = p as string[];
    else if (Array.isArray(p) && p.length > 0 && p.every((x) => isIntList(x) && x.length > 0)) list = p as number[][];
    else throw new HttpError(400, '`prompt` must be a string, a list of strings, a list of token ids or a list of token-id lists');
    const maxTokens = body.max_tokens === undefined || body.max_tokens === null ? 16 : body.max_tokens;
    if (!Number.isSafeInteger(maxTokens) || (maxTokens as number) < 1) throw new HttpError(400, `max_tokens must be at least 1, got ${String(maxTokens)}.`);
    if (body.n !== undefined && body.n !== 1) throw new HttpError(400, 'this test server supports n = 1 only');
    if (body.echo === true || body.logprobs !== undefined && body.logprobs !== null) throw new HttpError(400, 'this test server does not support echo or logprobs');
    if (body.prompt_logprobs !== undefined && body.prompt_logprobs !== null) {
      if (!Number.isSafeInteger(body.prompt_logprobs) || (body.prompt_logprobs as number) < 0) throw new HttpError(400, `prompt_logprobs must be non-negative, got ${String(body.prompt_logprobs)}.`);
      if (body.stream === true) throw new HttpError(400, 'prompt_logprobs is not compatible with streaming.');
      if ((body.prompt_logprobs as number) > 0) throw new HttpError(400, 'this test server returns the prompt tokens only (prompt_logprobs 0)');
    }
    if (body.stream === true && list.length !== 1) throw new HttpError(400, 'this test server streams one prompt at a time');
    const limit = this.engine.modelInfo.contextSize;
    const prompts = list.map((x) => (typeof x === 'string' ? this.tokens(x) : x));
    prompts.forEach((ids, i) => {
      if (ids.length === 0) throw new HttpError(400, `prompt ${i} is empty`);
      if (ids.length + (maxTokens as number) > limit) {
        throw new HttpError(400, `This model's maximum context length is ${limit} tokens. However, you requested ${ids.length + (maxTokens as number)} tokens (${ids.length} in the messages, ${String(maxTokens)} in the completion). Please reduce the length of the messages or completion.`);
      }
    });
    return { prompts, texts: list.map((x) => (typeof x === 'string' ? x : undefined)), maxTokens: maxTokens as number };
  }

  private sampling(body: CompletionBody, maxTokens: number): { temperature: number; topK: number; topP: number; maxTokens: number; seed?: number; stop: string[] } {
    const num = (v: unknown, d: number): number => (typeof v === 'number' && Number.isFinite(v) ? v : d);
    const stop = typeof body.stop === 'string' ? [body.stop] : Array.isArray(body.stop) ? body.stop.filter((s): s is string => typeof s === 'string') : [];
    return {
      temperature: num(body.temperature, 1),
      topK: num(body.top_k, -1),
      topP: num(body.top_p, 1),
      maxTokens,
      ...(typeof body.seed === 'number' ? { seed: body.seed } : {}),
      stop,
    };
  }

  private async completions(req: IncomingMessage, res: ServerResponse, body: CompletionBody): Promise<void> {
    const { prompts, texts, maxTokens } = this.validate(body);
    const sampling = this.sampling(body, maxTokens);
    const controller = new AbortController();
    res.on('close', () => controller.abort());
    const id = `cmpl-${++this.serial}`;
    const created = Math.floor(Date.now() / 1000);
    const rawOf = (i: number): string => texts[i] ?? this.engine.detokenize(prompts[i]!, true);

    if (body.stream === true) {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
      const event = (text: string, finish: string | null): void => {
        res.write(`data: ${JSON.stringify({ id, object: 'text_completion', created, model: this.modelName, choices: [{ index: 0, text, logprobs: null, finish_reason: finish, stop_reason: null }] })}\n\n`);
      };
      try {
        const result = await this.engine.generate({ raw: rawOf(0) }, sampling, (chunk) => {
          if (chunk.text !== '') event(chunk.text, null);
        }, controller.signal);
        event('', result.doneReason);
        res.write('data: [DONE]\n\n');
        res.end();
      } catch {
        res.destroy();
      }
      return;
    }

    const wantPromptLogprobs = this.promptLogprobs && body.prompt_logprobs !== undefined && body.prompt_logprobs !== null;
    const choices: Record<string, unknown>[] = [];
    let completionTokens = 0;
    for (let i = 0; i < prompts.length; i++) {
      // Scored right before its generation, so the generation reuses the evaluated prompt.
      const scored = wantPromptLogprobs ? (await this.engine.scoreTokenSequences([{ tokens: prompts[i]!, start: 1 }], controller.signal))[0]! : undefined;
      const result = await this.engine.generate({ raw: rawOf(i) }, sampling, undefined, controller.signal);
      completionTokens += result.tokens.length;
      const choice: Record<string, unknown> = { index: i, text: result.text, logprobs: null, finish_reason: result.doneReason, stop_reason: null };
      if (scored !== undefined) {
        choice.prompt_logprobs = [
          null,
          ...scored.tokens.map((t) => ({ [String(t.token)]: { logprob: t.logprob, rank: null, decoded_token: this.engine.detokenize([t.token], true) } })),
        ];
      }
      if (body.return_token_ids === true) choice.prompt_token_ids = prompts[i];
      choices.push(choice);
    }
    const promptTokens = prompts.reduce((n, p) => n + p.length, 0);
    const answer = { id, object: 'text_completion', created, model: this.modelName, choices, usage: { prompt_tokens: promptTokens, total_tokens: promptTokens + completionTokens, completion_tokens: completionTokens } };
    if (wantPromptLogprobs && this.garbage !== undefined) return this.sendGarbage(res, answer);
    this.send(res, 200, answer);
  }

  /** Writes the answer with one log-probability corrupted the way `garbage` says. */
  private sendGarbage(res: ServerResponse, answer: { choices: Record<string, unknown>[] }): void {
    const mode = this.garbage!;
    this.garbage = undefined;
    const entries = answer.choices[0]!.prompt_logprobs as Array<Record<string, { logprob: unknown }> | null>;
    const last = entries.length - 1;
    const entry = entries[last]!;
    const key = Object.keys(entry)[0]!;
    if (mode === 'missing-entry') entries[last] = null;
    else if (mode === 'null') entry[key]!.logprob = null;
    else if (mode === 'string') entry[key]!.logprob = String(entry[key]!.logprob);
    else if (mode === 'positive') entry[key]!.logprob = 0.7;
    else entry[key]!.logprob = 123456.5;
    let text = JSON.stringify(answer);
    // Python's json module writes NaN as a bare literal, which is not JSON.
    if (mode === 'nan-literal') text = text.replace('123456.5', 'NaN');
    this.send(res, 200, undefined, text);
  }
}
