/**
 * An Ollama-compatible HTTP server for tests (never shipped): a real server on 127.0.0.1 (random
 * port) backed by real inference with node-llama-cpp through LlamaEngine on a GGUF file.
 *
 * Routes: GET /api/version, GET /api/tags, POST /api/show, POST /api/generate (raw or templated,
 * stream true/false, logprobs, top_logprobs, options temperature/top_k/top_p/num_predict/
 * num_ctx/seed/stop), POST /api/chat, POST /api/embed. Streams are NDJSON, one object per line,
 * as Ollama sends them; unknown models get 404 {"error": "model 'x' not found"}.
 *
 * Ollama behaviours reproduced because the client depends on them:
 *  - log-probabilities only for generated tokens, never for the end-of-generation token;
 *  - text held back while it may start a stop string is sent later together with its tokens'
 *    log-probabilities, and tokens inside a matched stop string are dropped;
 *  - logprobs are computed from the raw logits, independent of the sampling options;
 *  - `/api/show` returns `modelfile` with a `FROM <absolute gguf path>` line, and `template`.
 *
 * Simulations: `setDown('refuse')` closes the listener (ECONNREFUSED), `setDown('reset')`
 * accepts and destroys connections, `setDown('hang')` accepts and never answers;
 * `slowFirstTokenMs` delays the first byte of generate/chat/embed answers (a cold model load);
 * `missingModels` answers 404 for those names; `version` and `logprobs: false` play an old
 * server. Every request is recorded, and every request and response is validated against
 * Ollama's OpenAPI spec; problems are collected in `violations`.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { LlamaEngine, GeneratedToken, TokenLogprob as EngineTokenLogprob } from '../../src/engines/llama/llamaEngine';
import { LocalHttpServer } from './localHttpServer';
import { OllamaOpenApi } from './openapi';
import { randomLlamaModelPath } from './randomGguf';

/** The project's tiny trained model (ChatML, <|im_end|> ends a turn). */
export const FIXTURE_MODEL_PATH = fileURLToPath(new URL('../fixtures/model/exact-tiny.gguf', import.meta.url));

/**
 * The model the Ollama tests serve: $EXACT_TEST_MODEL (or $EXACT_FIXTURE_MODEL) when set (any ChatML GGUF), else the
 * fixture model when it is there, else a random-weight ChatML model built on the fly.
 */
export function testModelPath(): { path: string; kind: 'fixture' | 'random' | 'env' } {
  const fromEnv = process.env.EXACT_TEST_MODEL ?? process.env.EXACT_FIXTURE_MODEL;
  if (fromEnv !== undefined && fromEnv !== '') return { path: fromEnv, kind: 'env' };
  if (existsSync(FIXTURE_MODEL_PATH)) return { path: FIXTURE_MODEL_PATH, kind: 'fixture' };
  return { path: randomLlamaModelPath({ seed: 11 }), kind: 'random' };
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly body: unknown;
  readonly at: number;
}

export type DownMode = false | 'refuse' | 'reset' | 'hang';

export interface OllamaTestServerOptions {
  /** The engine doing the inference (not disposed by the server). */
  readonly engine: LlamaEngine;
  /** The GGUF path reported in FROM (default: the engine's model path). */
  readonly ggufPath?: string;
  /** Generation model name (default 'exact-tiny:latest'). */
  readonly model?: string;
  /** Embedding model names served by the same engine (default ['exact-embed:latest']). */
  readonly embeddingModels?: ReadonlyArray<string>;
  /** Reported version (default '0.12.11', the first with log-probabilities). */
  readonly version?: string;
  /** Validate traffic against the spec (default: a loaded OllamaOpenApi). */
  readonly openapi?: OllamaOpenApi | false;
}

interface ModelEntry {
  readonly name: string;
  readonly embedding: boolean;
}

/** Ollama's model-name matching: a missing tag means ':latest'. */
function canonical(name: string): string {
  const t = name.trim();
  return /:[^/]*$/.test(t) ? t : `${t}:latest`;
}

/** Ollama's Go template for ChatML models (as /api/show reports it, e.g. for qwen2.5). */
const CHATML_GO_TEMPLATE =
  '{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}' +
  '{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n';

export class OllamaTestServer {
  readonly requests: RecordedRequest[] = [];
  readonly violations: string[] = [];
  /** Names that answer 404 although configured (a model that was never pulled). */
  readonly missingModels = new Set<string>();
  slowFirstTokenMs = 0;
  version: string;
  /** false plays a server older than 0.12.11: logprobs fields are ignored. */
  logprobs = true;
  /** Overrides the FROM path (e.g. a path that exists only on another machine). */
  fromPath: string | undefined;
  /**
   * Plays a broken server or proxy: rewrites each streamed line after it was checked against the
   * spec (a string is sent as the line's text, e.g. with `1e999`, which JSON reads as Infinity).
   */
  tamper: ((line: Record<string, unknown>) => Record<string, unknown> | string) | undefined;

  private readonly engine: LlamaEngine;
  private readonly models: ModelEntry[];
  private readonly openapi: OllamaOpenApi | undefined;
  private readonly http: LocalHttpServer;
  private down: DownMode = false;
  private readonly startedAt = new Date();

  private constructor(options: OllamaTestServerOptions) {
    this.engine = options.engine;
    this.version = options.version ?? '0.12.11';
    this.fromPath = options.ggufPath;
    this.models = [
      { name: canonical(options.model ?? 'exact-tiny:latest'), embedding: false },
      ...(options.embeddingModels ?? ['exact-embed:latest']).map((n) => ({ name: canonical(n), embedding: true })),
    ];
    this.openapi = options.openapi === false ? undefined : (options.openapi ?? OllamaOpenApi.load());
    this.http = new LocalHttpServer((req, res) => void this.handle(req, res), () => this.down !== 'reset');
  }

  static async start(options: OllamaTestServerOptions): Promise<OllamaTestServer> {
    const s = new OllamaTestServer(options);
    await s.http.listen(0);
    return s;
  }

  get port(): number {
    return this.http.port;
  }

  get url(): string {
    return this.http.url;
  }

  get modelName(): string {
    return this.models[0]!.name;
  }

  get embeddingModelNames(): string[] {
    return this.models.filter((m) => m.embedding).map((m) => m.name);
  }

  /** The GGUF path /api/show reports in FROM. */
  get reportedGgufPath(): string {
    return this.fromPath ?? this.engine.modelInfo.path;
  }

  /** Requests to one path (e.g. '/api/generate'), oldest first. */
  requestsTo(path: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  /** Simulates an outage (see the file comment); false brings the server back on the same port. */
  async setDown(mode: DownMode): Promise<void> {
    const wasRefusing = this.down === 'refuse';
    this.down = mode;
    if (mode === 'refuse' && !wasRefusing) await this.http.stop();
    else if (mode !== 'refuse' && wasRefusing) await this.http.listen();
  }

  close(): Promise<void> {
    return this.http.stop();
  }

  // -------------------------------------------------------------------------------------------

  private check(where: string, errors: string[]): void {
    if (errors.length > 0) this.violations.push(`${where}: ${errors.join('; ')}`);
  }

  private sendJson(res: ServerResponse, method: string, path: string, status: number, body: unknown): void {
    if (this.openapi !== undefined && path !== '*') this.check(`response ${method} ${path} ${status}`, this.openapi.validateResponse(method, path, status, 'application/json', body));
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  private notFound(res: ServerResponse, method: string, path: string, model: string): void {
    this.sendJson(res, method, path, 404, { error: `model '${model}' not found` });
  }

  private findModel(name: unknown): ModelEntry | undefined {
    if (typeof name !== 'string' || name.trim() === '') return undefined;
    const c = canonical(name);
    if (this.missingModels.has(name) || this.missingModels.has(c)) return undefined;
    return this.models.find((m) => m.name === c);
  }

  private async readBody(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.down === 'hang') return; // accept, read nothing, never answer
    const method = (req.method ?? 'GET').toUpperCase();
    const path = (req.url ?? '/').split('?')[0]!;
    let body: unknown;
    try {
      const text = await this.readBody(req);
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      this.requests.push({ method, path, body: undefined, at: Date.now() });
      this.sendJson(res, method, '*', 400, { error: 'invalid JSON body' });
      return;
    }
    this.requests.push({ method, path, body, at: Date.now() });
    const known: Record<string, string> = {
      'GET /': 'root',
      'HEAD /': 'root',
      'GET /api/version': 'version',
      'GET /api/tags': 'tags',
      'POST /api/show': 'show',
      'POST /api/generate': 'generate',
      'POST /api/chat': 'chat',
      'POST /api/embed': 'embed',
    };
    const route = known[`${method} ${path}`];
    if (route === undefined) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('404 page not found');
      return;
    }
    if (this.openapi !== undefined && route !== 'root') {
      const errors = this.openapi.validateRequest(method, path, body);
      this.check(`request ${method} ${path}`, errors);
      if (errors.length > 0) {
        this.sendJson(res, method, path, 400, { error: errors.join('; ') });
        return;
      }
    }
    try {
      switch (route) {
        case 'root':
          res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
          res.end('Ollama is running');
          return;
        case 'version':
          return this.sendJson(res, method, path, 200, { version: this.version });
        case 'tags':
          return this.sendJson(res, method, path, 200, { models: this.models.filter((m) => this.findModel(m.name) !== undefined).map((m) => this.summary(m)) });
        case 'show':
          return this.show(res, body as { model: string });
        case 'generate':
          return await this.generate(req, res, body as GenerateBody);
        case 'chat':
          return await this.chat(req, res, body as ChatBody);
        case 'embed':
          return await this.embed(res, body as { model: string; input: string | string[] });
      }
    } catch (err) {
      if (!res.headersSent) this.sendJson(res, method, path, 500, { error: err instanceof Error ? err.message : String(err) });
      else res.destroy();
    }
  }

  private digest(name: string): string {
    return createHash('sha256').update(`${name}\0${this.reportedGgufPath}`).digest('hex');
  }

  private details(): Record<string, unknown> {
    return { parent_model: '', format: 'gguf', family: 'llama', families: ['llama'], parameter_size: `${Math.max(1, Math.round(this.engine.modelInfo.sizeBytes / 4 / 1e6))}M`, quantization_level: 'F32' };
  }

  private summary(m: ModelEntry): Record<string, unknown> {
    const { parent_model: _p, ...details } = this.details();
    return {
      name: m.name,
      model: m.name,
      modified_at: this.startedAt.toISOString(),
      size: this.engine.modelInfo.sizeBytes,
      digest: this.digest(m.name),
      details,
    };
  }

  private show(res: ServerResponse, body: { model: string }): void {
    const m = this.findModel(body.model);
    if (m === undefined) return this.notFound(res, 'POST', '/api/show', body.model);
    const info = this.engine.modelInfo;
    const format = this.engine.promptFormat;
    const template = format.id === 'chatml' ? CHATML_GO_TEMPLATE : (info.chatTemplate ?? '{{ .Prompt }}');
    const stops = format.end === '' ? [] : [format.end];
    const parameters = stops.map((s) => `stop                           "${s}"`).join('\n');
    const modelfile =
      `# Modelfile generated by "ollama show"\n# To build a new Modelfile based on this, replace FROM with:\n# FROM ${m.name}\n\n` +
      `FROM ${this.reportedGgufPath}\nTEMPLATE """${template}"""\n${stops.map((s) => `PARAMETER stop ${s}\n`).join('')}`;
    this.sendJson(res, 'POST', '/api/show', 200, {
      license: '',
      modelfile,
      parameters,
      template,
      details: this.details(),
      model_info: {
        'general.architecture': info.architecture,
        'general.name': info.name ?? m.name,
        [`${info.architecture}.context_length`]: info.trainContextSize,
        [`${info.architecture}.vocab_size`]: info.vocabSize,
        'tokenizer.ggml.bos_token_id': info.bos,
        'tokenizer.ggml.eos_token_id': info.eos,
      },
      capabilities: m.embedding ? ['embedding'] : ['completion'],
      modified_at: this.startedAt.toISOString(),
    });
  }

  private async delayFirstToken(signal: AbortSignal): Promise<void> {
    if (this.slowFirstTokenMs <= 0) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, this.slowFirstTokenMs);
      signal.addEventListener('abort', () => {
        clearTimeout(t);
        resolve();
      }, { once: true });
    });
  }

  /** Aborted when the client goes away (Ollama cancels the generation then). */
  private clientGone(req: IncomingMessage, res: ServerResponse): AbortController {
    const ac = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) ac.abort();
    });
    req.on('aborted', () => ac.abort());
    return ac;
  }

  private toOllamaLogprob(t: EngineTokenLogprob): Record<string, unknown> {
    return { token: t.token, logprob: t.logprob, bytes: t.bytes };
  }

  private async generate(req: IncomingMessage, res: ServerResponse, body: GenerateBody): Promise<void> {
    const m = this.findModel(body.model);
    if (m === undefined || m.embedding) {
      if (m?.embedding === true) return this.sendJson(res, 'POST', '/api/generate', 400, { error: `"${body.model}" does not support generate` });
      return this.notFound(res, 'POST', '/api/generate', body.model);
    }
    const input = body.raw === true ? { raw: body.prompt ?? '' } : { prompt: body.prompt ?? '', attributes: [] };
    await this.runGeneration(req, res, '/api/generate', m.name, body, input, (text, logprobs) => ({ response: text, ...logprobs }), (text) => ({ response: text }));
  }

  private async chat(req: IncomingMessage, res: ServerResponse, body: ChatBody): Promise<void> {
    const m = this.findModel(body.model);
    if (m === undefined || m.embedding) return this.notFound(res, 'POST', '/api/chat', body.model);
    const f = this.engine.promptFormat;
    let raw = '';
    let system = '';
    for (const msg of body.messages) {
      if (msg.role === 'system') {
        if (f.id === 'chatml') raw += `<|im_start|>system\n${msg.content}<|im_end|>\n`;
        else system += `${msg.content}\n\n`;
      } else if (msg.role === 'assistant') {
        raw += msg.content + f.end + (f.id === 'chatml' ? '\n' : '');
      } else {
        raw += f.head + system + msg.content + f.tail;
        system = '';
      }
    }
    if (body.messages.at(-1)?.role !== 'user') raw += f.id === 'chatml' ? '<|im_start|>assistant\n' : '';
    await this.runGeneration(
      req,
      res,
      '/api/chat',
      m.name,
      body,
      { raw },
      (text, logprobs) => ({ message: { role: 'assistant', content: text }, ...logprobs }),
      (text) => ({ message: { role: 'assistant', content: text } }),
    );
  }

  private async runGeneration(
    req: IncomingMessage,
    res: ServerResponse,
    path: '/api/generate' | '/api/chat',
    model: string,
    body: GenerateBody | ChatBody,
    input: { raw: string } | { prompt: string; attributes: string[] },
    chunkBody: (text: string, logprobs: { logprobs?: unknown[] }) => Record<string, unknown>,
    finalBody: (text: string) => Record<string, unknown>,
  ): Promise<void> {
    const stream = body.stream !== false;
    const o = body.options ?? {};
    const wantLogprobs = this.logprobs && body.logprobs === true;
    const nTop = wantLogprobs ? Math.max(0, Math.min(20, Math.floor(body.top_logprobs ?? 0))) : 0;
    const stop = o.stop === undefined ? undefined : Array.isArray(o.stop) ? o.stop : [o.stop];
    const ac = this.clientGone(req, res);
    const t0 = process.hrtime.bigint();
    await this.delayFirstToken(ac.signal);
    if (ac.signal.aborted) return;
    const loaded = process.hrtime.bigint();

    // Tokens wait here until the text they produced is sent (Ollama's pending logprobs).
    const held: Array<{ token: GeneratedToken; start: number }> = [];
    let producedBytes = 0;
    let sentBytes = 0;
    let allText = '';
    const allLogprobs: unknown[] = [];
    const line = (obj: Record<string, unknown>): void => {
      if (this.openapi !== undefined) {
        this.check(`response POST ${path} 200 stream`, this.openapi.validateResponse('POST', path, 200, 'application/x-ndjson', obj));
      }
      if (!res.headersSent) res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
      const sent = this.tamper === undefined ? obj : this.tamper(obj);
      res.write(`${typeof sent === 'string' ? sent : JSON.stringify(sent)}\n`);
    };
    const release = (): unknown[] => {
      const out: unknown[] = [];
      while (held.length > 0 && held[0]!.start < sentBytes) {
        const { token } = held.shift()!;
        out.push({ ...this.toOllamaLogprob(token), ...(nTop > 0 ? { top_logprobs: (token.topLogprobs ?? []).slice(0, nTop).map((t) => this.toOllamaLogprob(t)) } : {}) });
      }
      return out;
    };

    let result;
    try {
      result = await this.engine.generate(
        input,
        {
          temperature: o.temperature,
          topK: o.top_k,
          topP: o.top_p,
          maxTokens: o.num_predict !== undefined && o.num_predict >= 0 ? o.num_predict : undefined,
          seed: o.seed,
          stop,
          topLogprobs: wantLogprobs ? Math.max(1, nTop) : 0,
        },
        (chunk) => {
          for (const token of chunk.tokens) {
            held.push({ token, start: producedBytes });
            producedBytes += token.bytes.length;
          }
          if (chunk.text === '') return;
          sentBytes += Buffer.byteLength(chunk.text, 'utf8');
          allText += chunk.text;
          const lp = wantLogprobs ? release() : (held.splice(0, held.length), []);
          allLogprobs.push(...lp);
          if (stream) line({ model, created_at: new Date().toISOString(), ...chunkBody(chunk.text, wantLogprobs ? { logprobs: lp } : {}), done: false });
        },
        ac.signal,
      );
    } catch (err) {
      if (ac.signal.aborted) return; // the client left; nothing to answer
      if (stream && res.headersSent) {
        line({ error: err instanceof Error ? err.message : String(err) } as Record<string, unknown>);
        res.end();
        return;
      }
      throw err;
    }
    // Tokens still held: those inside a matched stop string are dropped (Ollama truncates them);
    // the others are flushed, as Ollama flushes its pending log-probabilities at the end.
    if (wantLogprobs && held.length > 0) {
      const full = this.engine.detokenize(result.tokens.map((t) => t.id));
      const stops = [...(stop ?? []), this.engine.promptFormat.end].filter((x) => x !== '');
      const at = Math.min(...stops.map((x) => full.indexOf(x)).filter((i) => i >= 0));
      sentBytes = Number.isFinite(at) ? Buffer.byteLength(full.slice(0, at), 'utf8') : Infinity;
      const lp = release();
      allLogprobs.push(...lp);
      if (stream && lp.length > 0) line({ model, created_at: new Date().toISOString(), ...chunkBody('', { logprobs: lp }), done: false });
    }
    const end = process.hrtime.bigint();
    const stats = {
      done_reason: result.doneReason,
      total_duration: Number(end - t0),
      load_duration: Number(loaded - t0),
      prompt_eval_count: result.promptEvaluatedTokens,
      prompt_eval_duration: Math.round(result.promptMilliseconds * 1e6),
      eval_count: result.tokens.length,
      eval_duration: Math.round(result.generationMilliseconds * 1e6),
    };
    if (stream) {
      line({ model, created_at: new Date().toISOString(), ...chunkBody('', {}), done: true, ...stats });
      res.end();
    } else {
      this.sendJson(res, 'POST', path, 200, {
        model,
        created_at: new Date().toISOString(),
        ...finalBody(allText),
        done: true,
        ...stats,
        ...(wantLogprobs ? { logprobs: allLogprobs } : {}),
      });
    }
  }

  private async embed(res: ServerResponse, body: { model: string; input: string | string[] }): Promise<void> {
    const m = this.findModel(body.model);
    if (m === undefined) return this.notFound(res, 'POST', '/api/embed', body.model);
    const t0 = process.hrtime.bigint();
    const ac = new AbortController();
    res.on('close', () => ac.abort());
    await this.delayFirstToken(ac.signal);
    const input = Array.isArray(body.input) ? body.input : [body.input];
    const embeddings = await this.engine.embed(input);
    this.sendJson(res, 'POST', '/api/embed', 200, {
      model: m.name,
      embeddings,
      total_duration: Number(process.hrtime.bigint() - t0),
      load_duration: 0,
      prompt_eval_count: input.reduce((s, t) => s + this.engine.tokenize(t).length, 0),
    });
  }
}

interface RequestOptions {
  temperature?: number;
  top_k?: number;
  top_p?: number;
  num_predict?: number;
  num_ctx?: number;
  seed?: number;
  stop?: string | string[];
}

interface GenerateBody {
  model: string;
  prompt?: string;
  raw?: boolean;
  stream?: boolean;
  logprobs?: boolean;
  top_logprobs?: number;
  options?: RequestOptions;
}

interface ChatBody {
  model: string;
  messages: Array<{ role: string; content: string }>;
  stream?: boolean;
  logprobs?: boolean;
  top_logprobs?: number;
  options?: RequestOptions;
}
