/**
 * The Ollama client against an Ollama-compatible server backed by real llama.cpp inference
 * (test/support/ollamaServer.ts): health checks, streaming generation and cancellation, the
 * options sent, embeddings and the local fallback, typed errors, timeouts, and every request and
 * response checked against Ollama's OpenAPI specification.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { LOCAL_EMBEDDER_DIMENSION, LocalHashEmbedder } from '../../src/engines/embeddings';
import { LlamaEngine } from '../../src/engines/llama/llamaEngine';
import { OllamaClient } from '../../src/engines/ollama/client';
import { defaultOllamaHost, parseOllamaHost, resolveOllamaConfig, type OllamaConfig } from '../../src/engines/ollama/config';
import { chooseEmbedder, OllamaEmbedder } from '../../src/engines/ollama/embedder';
import {
  OllamaLogprobsUnavailableError,
  OllamaModelNotFoundError,
  OllamaNotRunningError,
  OllamaRequestError,
  OllamaTimeoutError,
  OllamaVersionTooOldError,
} from '../../src/engines/ollama/errors';
import { OllamaGenerator } from '../../src/engines/ollama/generator';
import { checkOllamaHealth, sameModelName } from '../../src/engines/ollama/health';
import { OllamaLogprobScorer } from '../../src/engines/ollama/logprobScorer';
import { PROMPT_FORMATS, renderPrompt } from '../../src/engines/promptFormat';
import { OllamaOpenApi } from '../support/openapi';
import { OllamaTestServer, testModelPath } from '../support/ollamaServer';

const MODEL = testModelPath();

describe('Ollama client against the test server', () => {
  let engine: LlamaEngine;
  let server: OllamaTestServer;
  let fetched: string[];
  const openapi = OllamaOpenApi.load();

  const client = (overrides: Partial<OllamaConfig> = {}): OllamaClient =>
    new OllamaClient(
      resolveOllamaConfig({ host: server.url, model: server.modelName, numCtx: 1024, maxTokens: 24, ...overrides }, {}),
      {
        fetch: (input, init) => {
          fetched.push(String(input instanceof Request ? input.url : input));
          return fetch(input, init);
        },
      },
    );

  before(async () => {
    engine = await LlamaEngine.load(MODEL.path, { threads: 1, contextSize: 1024 });
    server = await OllamaTestServer.start({ engine, openapi });
    fetched = [];
  });
  after(async () => {
    await server.close();
    await engine.dispose();
    // No request went anywhere but the configured host.
    assert.deepEqual(fetched.filter((u) => !u.startsWith(`${server.url}/api/`)), []);
    // Every request our client sent and every response the server gave matched the spec.
    assert.deepEqual(server.violations, []);
  });
  beforeEach(async () => {
    await server.setDown(false);
    server.slowFirstTokenMs = 0;
    server.missingModels.clear();
    server.version = '0.12.11';
    server.logprobs = true;
    server.fromPath = undefined;
  });

  test('health check: version, model, template, FROM path, embedding model', async () => {
    const health = await checkOllamaHealth(client({ embeddingModel: 'exact-embed' }), { requireLogprobs: true });
    assert.equal(health.version, '0.12.11');
    assert.equal(health.supportsLogprobs, true);
    assert.equal(health.promptFormat.id, 'chatml');
    assert.equal(health.ggufPath, MODEL.path);
    assert.equal(health.embeddingModelAvailable, true);
    const paths = server.requests.slice(-4).map((r) => `${r.method} ${r.path}`);
    assert.deepEqual(paths.slice(0, 3), ['GET /api/version', 'GET /api/tags', 'POST /api/show']);
  });

  test('generation streams in raw mode with the paper options, num_ctx and the stop marker', async () => {
    const gen = new OllamaGenerator(client({ numCtx: 768, maxTokens: 12 }));
    const pieces: string[] = [];
    const { text } = await gen.generate('Write a haiku about tea.', ['Concise', 'Vivid'], { seed: 3 }, (t) => pieces.push(t));
    assert.ok(pieces.length >= 2, `expected several streamed chunks, got ${pieces.length}`);
    assert.equal(pieces.join(''), text);
    const req = server.requestsTo('/api/generate').at(-1)!.body as Record<string, unknown>;
    assert.equal(req.raw, true);
    assert.equal(req.stream, true);
    assert.equal(req.model, server.modelName);
    assert.equal(req.prompt, renderPrompt(PROMPT_FORMATS.chatml, 'Write a haiku about tea.', ['Concise', 'Vivid']));
    assert.deepEqual(req.options, { temperature: 0.7, top_k: 50, top_p: 0.95, num_predict: 12, num_ctx: 768, seed: 3, stop: ['<|im_end|>'] });
    assert.equal(req.keep_alive, '10m');
    // The same seed gives the same text (the server samples deterministically like Ollama with a seed).
    assert.equal((await gen.generate('Write a haiku about tea.', ['Concise', 'Vivid'], { seed: 3 })).text, text);
  });

  test('per-call options override the defaults; num_ctx is always sent', async () => {
    const gen = new OllamaGenerator(client({ numCtx: 512 }));
    await gen.generate('Hi', [], { temperature: 0, topK: 5, topP: 0.5, maxTokens: 4 });
    const req = server.requestsTo('/api/generate').at(-1)!.body as { options: Record<string, unknown> };
    assert.deepEqual(req.options, { temperature: 0, top_k: 5, top_p: 0.5, num_predict: 4, num_ctx: 512, stop: ['<|im_end|>'] });
  });

  test('generation is cancelled by the signal, and the server is free again at once', async () => {
    const gen = new OllamaGenerator(client({ maxTokens: 400 }));
    const ac = new AbortController();
    let seen = 0;
    await assert.rejects(
      gen.generate('Tell a long story.', [], { temperature: 0.7, seed: 1 }, () => {
        if (++seen === 2) ac.abort();
      }, ac.signal),
      (e: Error) => e.name === 'AbortError',
    );
    assert.equal(seen, 2);
    // A signal that is already aborted sends nothing.
    const before = server.requests.length;
    await assert.rejects(gen.generate('x', [], {}, undefined, AbortSignal.abort()), (e: Error) => e.name === 'AbortError');
    assert.equal(server.requests.length, before);
    // The engine stopped generating: the next request is answered right away.
    const t0 = performance.now();
    await gen.generate('Hi', [], { maxTokens: 2, seed: 1 });
    assert.ok(performance.now() - t0 < 5000);
  });

  test('embeddings through /api/embed, and the local fallback when no model is set or it is missing', async () => {
    const c = client({ embeddingModel: 'exact-embed' });
    const chosen = await chooseEmbedder(c);
    assert.equal(chosen.kind, 'ollama');
    assert.ok(chosen.embedder instanceof OllamaEmbedder);
    assert.equal(chosen.embedder.id, 'ollama:exact-embed');
    const texts = ['How do I boil an egg?', 'Write a cover letter.', 'Poem about rain'];
    const vectors = await chosen.embedder.embed(texts);
    assert.equal(vectors.length, 3);
    for (const v of vectors) assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-4);
    const body = server.requestsTo('/api/embed').at(-1)!.body as Record<string, unknown>;
    assert.deepEqual(body.input, texts);
    assert.equal(body.model, 'exact-embed');

    const none = await chooseEmbedder(client({ embeddingModel: '' }));
    assert.equal(none.kind, 'local');
    assert.match(none.reason ?? '', /No embedding model is configured/);
    server.missingModels.add('nomic-embed-text');
    const missing = await chooseEmbedder(client({ embeddingModel: 'nomic-embed-text' }));
    assert.equal(missing.kind, 'local');
    assert.match(missing.reason ?? '', /ollama pull nomic-embed-text/);
    assert.equal((await missing.embedder.embed(['a b c']))[0]!.length, 512);
  });

  test('server down: connection refused gives OllamaNotRunningError with how to start it', async () => {
    await server.setDown('refuse');
    const c = client();
    const err = await c.version().then(
      () => assert.fail('expected an error'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof OllamaNotRunningError);
    assert.equal(err.code, 'ECONNREFUSED');
    assert.equal(err.message, `Ollama is not reachable at ${server.url} (ECONNREFUSED).`);
    assert.match(err.action, /`ollama serve`/);
    await assert.rejects(new OllamaGenerator(c).generate('x', [], {}), OllamaNotRunningError);
    await assert.rejects(checkOllamaHealth(c), OllamaNotRunningError);
    // Back up: the same client works again.
    await server.setDown(false);
    assert.equal(await c.version(), '0.12.11');
  });

  test('server resetting connections is also "not running"', async () => {
    await server.setDown('reset');
    const err = await client()
      .version()
      .catch((e: unknown) => e);
    assert.ok(err instanceof OllamaNotRunningError, String(err));
  });

  test('model not pulled: 404 becomes OllamaModelNotFoundError with the exact pull command', async () => {
    server.missingModels.add(server.modelName);
    const c = client({ model: 'exact-tiny' });
    const err = await checkOllamaHealth(c).catch((e: unknown) => e);
    assert.ok(err instanceof OllamaModelNotFoundError);
    assert.equal(err.message, `The generation model 'exact-tiny' is not available in Ollama at ${server.url}.`);
    assert.match(err.action, /`ollama pull exact-tiny`/);
    await assert.rejects(c.generateStream({ model: 'exact-tiny', prompt: 'x', raw: true }), OllamaModelNotFoundError);
    // What the server answered is Ollama's error body.
    const res = await fetch(`${server.url}/api/show`, { method: 'POST', body: JSON.stringify({ model: 'nope' }) });
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { error: "model 'nope' not found" });
  });

  test('Ollama too old for log-probabilities: version check and missing logprobs', async () => {
    server.version = '0.12.10';
    const c = client();
    const err = await checkOllamaHealth(c, { requireLogprobs: true }).catch((e: unknown) => e);
    assert.ok(err instanceof OllamaVersionTooOldError);
    assert.equal(err.required, '0.12.11');
    assert.match(err.message, /Ollama 0\.12\.10 .* too old .* version 0\.12\.11 or newer is needed/);
    assert.ok((await checkOllamaHealth(c)).supportsLogprobs === false);
    await assert.rejects(new OllamaLogprobScorer(c).scoreBatch([{ prompt: 'p', attributes: [], response: 'abc' }]), OllamaVersionTooOldError);
    // A server that claims a new version but ignores `logprobs` is caught by the scorer too.
    server.version = '0.13.0';
    server.logprobs = false;
    const dropped = await new OllamaLogprobScorer(c).scoreBatch([{ prompt: 'p', attributes: [], response: 'abc' }]).catch((e: unknown) => e);
    assert.ok(dropped instanceof OllamaLogprobsUnavailableError);
    // The version is fine, so updating Ollama is not the advice; another model or the in-process scorer is.
    assert.doesNotMatch(dropped.action, /Update Ollama/);
    assert.match(dropped.action, /another model.*exact\.scorer.*"llama\.cpp".*exact\.modelPath/su);
  });

  test('a slow first token (cold model load) is tolerated; timeouts are configurable and typed', async () => {
    server.slowFirstTokenMs = 400;
    const { text } = await new OllamaGenerator(client({ firstTokenTimeoutMs: 5000 })).generate('Hi', [], { maxTokens: 3, seed: 2 });
    assert.equal(typeof text, 'string');
    const err = await new OllamaGenerator(client({ firstTokenTimeoutMs: 100 })).generate('Hi', [], { maxTokens: 3 }).catch((e: unknown) => e);
    assert.ok(err instanceof OllamaTimeoutError, String(err));
    assert.equal(err.phase, 'first-token');
    assert.match(err.action, /loadTimeoutSeconds/);
    server.slowFirstTokenMs = 0;
    await server.setDown('hang');
    const hang = await client({ requestTimeoutMs: 150 })
      .version()
      .catch((e: unknown) => e);
    assert.ok(hang instanceof OllamaTimeoutError, String(hang));
    assert.equal(hang.phase, 'request');
  });

  test('the server streams NDJSON exactly in the spec, with logprobs per token', async () => {
    const res = await fetch(`${server.url}/api/generate`, {
      method: 'POST',
      body: JSON.stringify({ model: server.modelName, prompt: 'Hello', raw: true, logprobs: true, top_logprobs: 3, options: { temperature: 0, num_predict: 5, num_ctx: 512 } }),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/x-ndjson');
    const lines = (await res.text()).split('\n').filter((l) => l !== '');
    assert.ok(lines.length >= 2);
    for (const l of lines) assert.deepEqual(openapi.validateResponse('POST', '/api/generate', 200, 'application/x-ndjson', JSON.parse(l)), []);
    const objs = lines.map((l) => JSON.parse(l) as { done: boolean; logprobs?: Array<{ token: string; logprob: number; top_logprobs: unknown[] }>; eval_count?: number });
    assert.equal(objs.at(-1)!.done, true);
    const lps = objs.flatMap((o) => o.logprobs ?? []);
    assert.equal(lps.length, objs.at(-1)!.eval_count);
    for (const lp of lps) {
      assert.deepEqual(openapi.validateSchema('Logprob', lp), []);
      assert.equal(lp.top_logprobs.length, 3);
    }
    // stream: false answers one JSON object.
    const one = await fetch(`${server.url}/api/generate`, {
      method: 'POST',
      body: JSON.stringify({ model: server.modelName, prompt: 'Hello', stream: false, options: { num_predict: 3, seed: 1 } }),
    });
    assert.equal(one.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.deepEqual(openapi.validateResponse('POST', '/api/generate', 200, 'application/json', await one.json()), []);
    // /api/chat too.
    const chat = await fetch(`${server.url}/api/chat`, {
      method: 'POST',
      body: JSON.stringify({ model: server.modelName, messages: [{ role: 'user', content: 'Hi' }], stream: false, options: { num_predict: 3, seed: 1 } }),
    });
    const chatBody = (await chat.json()) as { message: { role: string } };
    assert.deepEqual(openapi.validateResponse('POST', '/api/chat', 200, 'application/json', chatBody), []);
    assert.equal(chatBody.message.role, 'assistant');
  });

  test('the server refuses requests that break the spec, like a strict Ollama would', async () => {
    const res = await fetch(`${server.url}/api/generate`, { method: 'POST', body: JSON.stringify({ prompt: 'no model' }) });
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { error: string }).error, /model/);
    server.violations.length = 0; // this violation was on purpose
    const c = client();
    const rejected = await c.generateStream({ model: server.modelName, prompt: 'x', options: { num_ctx: 1.5 } }).catch((e: unknown) => e);
    assert.ok(rejected instanceof OllamaRequestError);
    assert.match(rejected.action, /server log.*journalctl -u ollama.*Windows: %LOCALAPPDATA%/su);
    server.violations.length = 0;
  });
});

describe('Ollama configuration', () => {
  test('OLLAMA_HOST is read the way Ollama reads it', () => {
    assert.equal(parseOllamaHost(undefined), 'http://127.0.0.1:11434');
    assert.equal(parseOllamaHost(''), 'http://127.0.0.1:11434');
    assert.equal(parseOllamaHost('0.0.0.0'), 'http://127.0.0.1:11434');
    assert.equal(parseOllamaHost('0.0.0.0:8080'), 'http://127.0.0.1:8080');
    assert.equal(parseOllamaHost(':11435'), 'http://127.0.0.1:11435');
    assert.equal(parseOllamaHost('gpu-box'), 'http://gpu-box:11434');
    assert.equal(parseOllamaHost('gpu-box:9999'), 'http://gpu-box:9999');
    assert.equal(parseOllamaHost('http://gpu-box'), 'http://gpu-box:80');
    assert.equal(parseOllamaHost('https://ollama.example.com/'), 'https://ollama.example.com:443');
    assert.equal(parseOllamaHost('https://example.com/ollama'), 'https://example.com:443/ollama');
    assert.equal(parseOllamaHost('[::1]:5000'), 'http://[::1]:5000');
    assert.equal(defaultOllamaHost({ OLLAMA_HOST: '10.0.0.5:11434' }), 'http://10.0.0.5:11434');
    assert.equal(defaultOllamaHost({}), 'http://127.0.0.1:11434');
  });

  test('defaults: the paper decoding, long first-token timeout, invalid numbers fall back', () => {
    const c = resolveOllamaConfig({ model: ' qwen2.5:0.5b ', numCtx: -3 }, { OLLAMA_HOST: 'box:1' });
    assert.equal(c.host, 'http://box:1');
    assert.equal(c.model, 'qwen2.5:0.5b');
    assert.equal(c.numCtx, 4096);
    assert.equal(c.maxTokens, 200);
    assert.ok(c.firstTokenTimeoutMs >= 120_000);
    assert.ok(c.requestTimeoutMs < c.firstTokenTimeoutMs);
    assert.equal(resolveOllamaConfig({ host: 'http://other:2' }, { OLLAMA_HOST: 'box:1' }).host, 'http://other:2');
  });

  test('model names match like Ollama matches them', () => {
    assert.ok(sameModelName('llama3.2', 'llama3.2:latest'));
    assert.ok(!sameModelName('llama3.2:1b', 'llama3.2:latest'));
    assert.ok(sameModelName('registry.example.com/me/model', 'registry.example.com/me/model:latest'));
  });
});

describe('local fallback embedder', () => {
  test('deterministic, unit length, fixed dimension; empty text is the zero vector', async () => {
    const e = new LocalHashEmbedder();
    assert.equal(e.id, 'local-hash-v1-512');
    const [a, b, empty] = await e.embed(['Write a poem about the sea.', 'Write a poem about the sea.', '  ']);
    assert.deepEqual(a, b);
    assert.equal(a!.length, LOCAL_EMBEDDER_DIMENSION);
    assert.ok(Math.abs(Math.hypot(...a!) - 1) < 1e-12);
    assert.ok(empty!.every((x) => x === 0));
    await assert.rejects(e.embed(['x'], AbortSignal.abort()), (err: Error) => err.name === 'AbortError');
  });

  test('separates topics: every prompt is nearest to the other prompt on its topic', async () => {
    const topics = [
      ['Write an email to my landlord about the broken heater', 'Draft a message asking the landlord to repair the heating'],
      ['Explain how photosynthesis works in plants', 'How do plants turn sunlight into energy through photosynthesis?'],
      ['Write a poem about the ocean at night', 'Compose a short poem about waves under the moon and the ocean'],
      ['How do I fix a merge conflict in git?', 'Resolve git merge conflicts after a rebase'],
      ['Give me a recipe for banana bread', 'What is a good banana bread recipe with walnuts?'],
    ];
    const texts = topics.flat();
    const vectors = await new LocalHashEmbedder().embed(texts);
    const cos = (x: number[], y: number[]): number => x.reduce((s, v, i) => s + v * y[i]!, 0);
    for (let i = 0; i < texts.length; i++) {
      let best = -1;
      for (let j = 0; j < texts.length; j++) if (j !== i && (best < 0 || cos(vectors[i]!, vectors[j]!) > cos(vectors[i]!, vectors[best]!))) best = j;
      assert.equal(Math.floor(best / 2), Math.floor(i / 2), `${texts[i]} is nearest to ${texts[best]}`);
    }
  });
});
