/**
 * Which scorer runs, and the Ollama log-prob fallback scorer against the in-process llama.cpp
 * scorer on the same model (the test server serves the model through LlamaEngine).
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import type { ScoreRequest } from '../../src/core/ports';
import { LlamaEngine, type ScoreDetail } from '../../src/engines/llama/llamaEngine';
import { LlamaScorer } from '../../src/engines/llama/llamaScorer';
import { OllamaClient, STOP_STREAM, type OllamaLogprob } from '../../src/engines/ollama/client';
import { resolveOllamaConfig, type OllamaConfig } from '../../src/engines/ollama/config';
import { OllamaNotRunningError, OllamaVersionTooOldError } from '../../src/engines/ollama/errors';
import { guessMissedPiece, matchPosition, missEstimate, OllamaLogprobScorer, wordPieceStart, type DetailedScore } from '../../src/engines/ollama/logprobScorer';
import { PROMPT_FORMATS, renderPrompt } from '../../src/engines/promptFormat';
import { llamaScorerFactory, ScorerUnavailableError, selectScorer, type ReleasableScorer } from '../../src/engines/scorerSelection';
import { OllamaTestServer, testModelPath } from '../support/ollamaServer';

const MODEL = testModelPath();
const WORKER = fileURLToPath(new URL('../../src/engines/llama/scorerWorker.ts', import.meta.url));
const utf8 = new TextEncoder();

describe('fallback scorer: the token walk', () => {
  const entry = (token: string, logprob: number, top: Array<[string, number]>): OllamaLogprob => ({
    token,
    logprob,
    top_logprobs: top.map(([t, l]) => ({ token: t, logprob: l })),
  });

  test('takes the likeliest (or longest) candidate that starts the remaining response', () => {
    const y = utf8.encode('the cat');
    const e = entry('th', -0.5, [['th', -0.5], ['the', -1.5], ['t', -2], ['x', -0.1]]);
    const likeliest = matchPosition(e, y, 0)!;
    assert.equal(likeliest.bytes.length, 2);
    assert.equal(likeliest.logprob, -0.5);
    assert.equal(likeliest.generated, true);
    const longest = matchPosition(e, y, 0, 'longest')!;
    assert.equal(longest.bytes.length, 3);
    assert.equal(longest.logprob, -1.5);
    assert.equal(longest.generated, false);
    // A departure: the generated token does not match, an alternative does.
    const dep = matchPosition(entry('a', -0.2, [['a', -0.2], ['t', -3], ['the', -1]]), y, 0)!;
    assert.deepEqual([dep.bytes.length, dep.logprob, dep.generated], [3, -1, false]);
    assert.equal(matchPosition(entry('dog', -0.1, [['a', -2]]), y, 0), undefined);
    // Bytes, when Ollama sends them, decide (half a UTF-8 character has no exact text).
    const e2: OllamaLogprob = { token: '\ufffd', logprob: -1, bytes: [0xc3], top_logprobs: [] };
    assert.equal(matchPosition(e2, utf8.encode('é'), 0)?.bytes.length, 1);
  });

  test('a miss is estimated from the mass outside the top 20 and covers one guessed word piece', () => {
    const e = entry('a', -0.1, [['a', -0.1], ['b', -3], ['c', -4]]);
    const tail = Math.log(1 - Math.exp(-0.1) - Math.exp(-3) - Math.exp(-4));
    const bound = Math.min(-4, tail);
    const uniform = tail - Math.log(1000 - 3);
    assert.ok(Math.abs(missEstimate(e, -30, 1000, 'bound') - bound) < 1e-12);
    assert.ok(Math.abs(missEstimate(e, -30, 1000) - uniform) < 1e-12);
    assert.ok(Math.abs(missEstimate(e, -30, 1000, 'midpoint') - (bound + uniform) / 2) < 1e-12);
    assert.equal(missEstimate(e, -5, 1000), -5); // never below the floor
    assert.equal(missEstimate(undefined, -30), -30);
    assert.equal(missEstimate(entry('a', 0, [['a', 0]]), -30), -30); // no mass left: the floor
    const y = utf8.encode(' wonderful, 1234 days\n\nok');
    assert.equal(guessMissedPiece(y, 0), ' wonderful'.length);
    assert.equal(guessMissedPiece(y, 10), 1); // ','
    assert.equal(guessMissedPiece(y, 11), ' 123'.length);
    assert.equal(guessMissedPiece(y, 21), 2); // '\n\n'
    assert.equal(guessMissedPiece(utf8.encode('é'), 1), 1); // the rest of a split character
    assert.equal(guessMissedPiece(y, 0, 'char'), 2); // ' w'
    const z = utf8.encode('Ok. Remember');
    assert.equal(wordPieceStart(z, 6), 3); // inside " Remember": back to its space
    assert.equal(wordPieceStart(z, 4), 3);
    assert.equal(wordPieceStart(z, 3), 3); // at the space: not inside a piece
    assert.equal(wordPieceStart(z, 2), 2); // at '.'
  });
});

type Script = (prompt: string, options: Record<string, unknown>) => Array<{ response: string; logprobs: OllamaLogprob[] }>;

/** An OllamaClient stand-in that answers generate requests from a script and honours STOP_STREAM. */
function scriptedClient(script: Script): { client: OllamaClient; prompts: string[] } {
  const prompts: string[] = [];
  const fake = {
    host: 'http://script',
    config: resolveOllamaConfig({ host: 'http://script', model: 'm' }, {}),
    async generateStream(body: { prompt: string; options: Record<string, unknown> }, onChunk: (c: unknown) => unknown) {
      prompts.push(body.prompt);
      const chunks = script(body.prompt, body.options);
      for (const c of chunks) {
        if (onChunk({ ...c, done: false }) === STOP_STREAM) return { text: '', doneReason: 'aborted-by-caller', logprobs: [] };
      }
      onChunk({ response: '', done: true, done_reason: 'stop' });
      return { text: '', doneReason: 'stop', logprobs: [] };
    },
  };
  return { client: fake as unknown as OllamaClient, prompts };
}

describe('fallback scorer: backtracking on scripted reports', () => {
  const lp = (token: string, logprob: number, top: Array<[string, number]>): OllamaLogprob => ({
    token,
    logprob,
    top_logprobs: [[token, logprob] as [string, number], ...top].map(([t, l]) => ({ token: t, logprob: l })),
  });
  const P = 'P:';
  const options = { promptFormat: PROMPT_FORMATS.plain, skipVersionCheck: true, scoreEnd: false, vocabSize: 100 } as const;

  test('"W" then a miss: the longer candidate "What" that matched first is taken instead', async () => {
    const { client, prompts } = scriptedClient((prompt) => {
      const y = prompt.slice(P.length);
      if (y === '') return [{ response: 'W', logprobs: [lp('W', -0.4, [['What', -1.1], ['B', -6]])] }, { response: 'ow', logprobs: [lp('ow', -0.01, [['ith', -9]])] }];
      if (y === 'What') return [{ response: ' a', logprobs: [lp(' a', -0.2, [])] }];
      throw new Error(`unexpected prompt ${JSON.stringify(prompt)}`);
    });
    const d = await new OllamaLogprobScorer(client, options).scoreOne(P, 'What a', '');
    assert.deepEqual(d.tokens.map((t) => [t.text, t.logprob, t.exact]), [['What', -1.1, true], [' a', -0.2, true]]);
    assert.deepEqual(prompts, [P, `${P}What`]);
    const plain = await new OllamaLogprobScorer(client, { ...options, backtrack: false }).scoreOne(P, 'What a', '');
    assert.deepEqual(plain.tokens.map((t) => [t.text, t.exact]), [['W', true], ['hat', false], [' a', true]]);
  });

  test('a bare space and a letter that the model cannot continue become one miss for the word', async () => {
    const { client } = scriptedClient((prompt) => {
      const y = prompt.slice(P.length);
      if (y === 'Ok.') return [{ response: ' ', logprobs: [lp(' ', -0.7, [[' Sure', -2]])] }, { response: 'A', logprobs: [lp('\n', -0.1, [['A', -7]])] }];
      if (y === 'Ok. A') return [{ response: 'x', logprobs: [lp('x', -0.1, [['y', -2], ['z', -3]])] }];
      if (y === '') return [{ response: 'Ok.', logprobs: [lp('Ok', -0.1, []), lp('.', -0.1, [])] }];
      if (y === 'Ok. As') return [{ response: ' an', logprobs: [lp(' an', -0.5, [])] }];
      throw new Error(`unexpected prompt ${JSON.stringify(prompt)}`);
    });
    const d = await new OllamaLogprobScorer(client, options).scoreOne(P, 'Ok. As an', '');
    assert.deepEqual(d.tokens.map((t) => [t.text, t.exact]), [['Ok', true], ['.', true], [' As', false], [' an', true]]);
    // The miss is estimated from the report where the word starts (after "Ok."): the tail bound there.
    const tail = Math.log(1 - Math.exp(-0.7) - Math.exp(-2));
    assert.ok(Math.abs(d.tokens[2]!.logprob - (tail - Math.log(100 - 2))) < 1e-12);
  });

  test('two tokens that spell a likelier longer candidate are merged, and the walk restarts after it', async () => {
    const { client, prompts } = scriptedClient((prompt) => {
      const y = prompt.slice(P.length);
      if (y === '') return [{ response: ' ', logprobs: [lp(' ', -0.5, [[' I', -1.2]])] }, { response: 'I', logprobs: [lp('I', -2, [])] }];
      if (y === ' I') return [{ response: ' am', logprobs: [lp(' am', -0.1, [])] }];
      throw new Error(`unexpected prompt ${JSON.stringify(prompt)}`);
    });
    const d = await new OllamaLogprobScorer(client, options).scoreOne(P, ' I am', '');
    assert.deepEqual(d.tokens.map((t) => [t.text, t.logprob]), [[' I', -1.2], [' am', -0.1]]);
    assert.deepEqual(prompts, [P, `${P} I`]);
  });

  test('the end marker: greedy decoding ends the turn, so the position is asked by sampling', async () => {
    const { client, prompts } = scriptedClient((prompt, o) => {
      const y = prompt.slice(P.length);
      if (y === '') return [{ response: 'Hi', logprobs: [lp('Hi', -0.1, [])] }]; // then EOS: done
      if (y === 'Hi' && o.temperature === 0) return [];
      if (y === 'Hi') return [{ response: '!', logprobs: [lp('!', -3, [['<|im_end|>', -0.2]])] }];
      throw new Error(`unexpected prompt ${JSON.stringify(prompt)}`);
    });
    const d = await new OllamaLogprobScorer(client, { ...options, scoreEnd: true }).scoreOne(P, 'Hi', '<|im_end|>');
    assert.deepEqual(d.tokens.map((t) => [t.text, t.logprob, t.exact, t.isEnd]), [['Hi', -0.1, true, false], ['<|im_end|>', -0.2, true, true]]);
    assert.equal(prompts.length, 2, 'after a natural stop the next request samples right away');
  });
});

/** A stand-in for LlamaScorer in selection tests: records the path it was made for. */
class StubScorer implements ReleasableScorer {
  constructor(readonly path: string) {}
  async scoreBatch(requests: ReadonlyArray<ScoreRequest>): Promise<number[]> {
    return requests.map(() => 0);
  }
}

describe('scorer selection and the fallback scorer against llama.cpp', () => {
  let engine: LlamaEngine;
  let server: OllamaTestServer;
  let llama: LlamaScorer;

  const client = (overrides: Partial<OllamaConfig> = {}): OllamaClient =>
    new OllamaClient(resolveOllamaConfig({ host: server.url, model: server.modelName, numCtx: 1024, ...overrides }, {}));
  const stubFactory = (path: string): StubScorer => new StubScorer(path);

  before(async () => {
    engine = await LlamaEngine.load(MODEL.path, { threads: 1, contextSize: 1024 });
    server = await OllamaTestServer.start({ engine });
    llama = new LlamaScorer({ modelPath: MODEL.path, workerPath: WORKER, engine: { threads: 1, contextSize: 1024 } });
  });
  after(async () => {
    await llama.dispose();
    await server.close();
    await engine.dispose();
    assert.deepEqual(server.violations, []);
  });
  beforeEach(async () => {
    await server.setDown(false);
    server.fromPath = undefined;
    server.version = '0.12.11';
  });

  test('auto: llama.cpp when the FROM file is readable here', async () => {
    const s = await selectScorer({ setting: 'auto', client: client(), createLlamaScorer: stubFactory });
    assert.equal(s.kind, 'llama.cpp');
    assert.equal(s.modelPath, MODEL.path);
    assert.equal((s.scorer as StubScorer).path, MODEL.path);
    assert.match(s.reason, /readable here/);
  });

  test('auto: the Ollama fallback when the FROM file is not readable (Ollama on another machine)', async () => {
    server.fromPath = '/usr/share/ollama/.ollama/models/blobs/sha256-0123456789abcdef';
    const s = await selectScorer({ setting: 'auto', client: client(), createLlamaScorer: stubFactory });
    assert.equal(s.kind, 'ollama');
    assert.ok(s.scorer instanceof OllamaLogprobScorer);
    assert.match(s.reason, /not usable here/);
    // A readable file that is not GGUF is not used either.
    server.fromPath = fileURLToPath(import.meta.url);
    assert.equal((await selectScorer({ setting: 'auto', client: client(), createLlamaScorer: stubFactory })).kind, 'ollama');
    // ...and with an Ollama too old for log-probs neither scorer can run: the error names both
    // problems and both ways out, and not exact.scorer (llama.cpp was just found unusable).
    server.version = '0.11.4';
    const err = await selectScorer({ setting: 'auto', client: client(), createLlamaScorer: stubFactory }).catch((e: unknown) => e);
    assert.ok(err instanceof ScorerUnavailableError, String(err));
    assert.ok(err.cause instanceof OllamaVersionTooOldError);
    assert.match(err.message, /cannot be used here .*is not a GGUF model file.*0\.11\.4.*too old/su);
    assert.match(err.action, /exact\.modelPath.*update Ollama to 0\.12\.11/su);
    assert.doesNotMatch(err.action, /exact\.scorer/);
    // Without any model file from Ollama, the way out is a local file or a newer Ollama.
    server.fromPath = 'llama3.2';
    const none = await selectScorer({ setting: 'auto', client: client(), createLlamaScorer: stubFactory }).catch((e: unknown) => e);
    assert.ok(none instanceof ScorerUnavailableError, String(none));
    assert.match(none.message, /Ollama reports no model file for .*too old/su);
    assert.match(none.action, /^Set `exact\.modelPath` .*, or update Ollama to 0\.12\.11/su);
  });

  test('the setting forces either scorer', async () => {
    const forcedOllama = await selectScorer({ setting: 'ollama', client: client(), createLlamaScorer: stubFactory });
    assert.equal(forcedOllama.kind, 'ollama');
    server.fromPath = '/elsewhere/model.gguf';
    const err = await selectScorer({ setting: 'llama.cpp', client: client(), createLlamaScorer: stubFactory }).catch((e: unknown) => e);
    assert.ok(err instanceof ScorerUnavailableError);
    assert.match(err.message, /Model file not found: \/elsewhere\/model.gguf/);
    assert.match(err.action, /"auto" or "ollama"/);
    const explicit = await selectScorer({ setting: 'llama.cpp', client: client(), modelPath: MODEL.path, createLlamaScorer: stubFactory });
    assert.equal(explicit.kind, 'llama.cpp');
  });

  test('an explicit model path works while Ollama is down; without one, "not running" is reported', async () => {
    await server.setDown('refuse');
    const s = await selectScorer({ setting: 'auto', client: client(), modelPath: MODEL.path, createLlamaScorer: stubFactory });
    assert.equal(s.kind, 'llama.cpp');
    await assert.rejects(selectScorer({ setting: 'auto', client: client(), createLlamaScorer: stubFactory }), OllamaNotRunningError);
  });

  test('the default factory makes a worker LlamaScorer that may use the GPU and releases when idle', () => {
    const make = llamaScorerFactory({ workerPath: WORKER, idleReleaseMs: 30_000 });
    const s = make(MODEL.path);
    assert.ok(s instanceof LlamaScorer);
    const opts = (s as unknown as { options: { engine: { gpu: unknown }; idleReleaseMs: number } }).options;
    assert.equal(opts.engine.gpu, 'auto');
    assert.equal(opts.idleReleaseMs, 30_000);
  });

  test('the fallback agrees with the llama.cpp scorer wherever it is exact, and reports its misses', async (t) => {
    const fmt = engine.promptFormat;
    const twins = vocabularyTwins(engine);
    // Responses the model finds likely (its top printable-ASCII continuation, token by token),
    // so the greedy walk stays on them for a while, and ordinary text it finds unlikely.
    const likely = async (prompt: string, attributes: string[], n: number): Promise<string> => {
      let y = '';
      for (let i = 0; i < n; i++) {
        const r = await engine.generate({ raw: renderPrompt(fmt, prompt, attributes) + y }, { temperature: 0, maxTokens: 1, topLogprobs: 20 });
        const tok = r.tokens[0];
        // Text tokens only: printable ASCII, no byte-fallback twin (see agreement()), and no control
        // token such as <|im_end|> (its text in a response stays text, which the fallback sends as "< |im_end|>").
        const isControl = (bytes: ReadonlyArray<number>): boolean => {
          const text = Buffer.from(bytes).toString('utf8');
          return engine.tokenize(text, true).length === 1 && engine.tokenize(text, false).length > 1;
        };
        const c = tok === undefined ? undefined : [tok, ...(tok.topLogprobs ?? [])].find((x) => !twins.has(x.id) && x.bytes.length > 0 && x.bytes.every((b) => b >= 32 && b < 127) && !isControl(x.bytes));
        if (c === undefined) break;
        y += Buffer.from(c.bytes).toString('utf8');
      }
      return y;
    };
    const requests: ScoreRequest[] = [];
    for (const prompt of ['Write a haiku about tea.', 'How do I boil an egg?']) {
      const y = await likely(prompt, ['Concise'], 16);
      requests.push({ prompt, attributes: ['Concise'], response: y }, { prompt, attributes: [], response: y });
      requests.push({ prompt, attributes: ['Formal', 'Vivid'], response: 'Put the egg in boiling water for nine minutes.' });
    }
    const fallback = new OllamaLogprobScorer(client());
    const [fb, ref] = await Promise.all([fallback.scoreDetailed(requests), llama.scoreDetailed(requests)]);
    assert.deepEqual(await fallback.scoreBatch(requests.slice(0, 1)), [fb[0]!.logprob]);

    let compared = 0;
    let exact = 0;
    let missed = 0;
    let tokens = 0;
    let requestsMade = 0;
    const allDiffs: number[] = [];
    for (let i = 0; i < requests.length; i++) {
      const a = agreement(engine, twins, requests[i]!, ref[i]!, fb[i]!);
      // llama.cpp itself differs between one-token generation steps and batched scoring: on the
      // F16 fixture, same engine and tokens, median 6e-7 but up to 2e-3 on unlikely tokens. So:
      // 1e-3 per token, plus 5e-4 per nat of surprise.
      for (const d of a.diffs) {
        assert.ok(d.diff < 1e-3 + 5e-4 * Math.abs(d.llama), `request ${i} token ${JSON.stringify(d.text)}: fallback ${d.fallback} vs llama.cpp ${d.llama}`);
      }
      allDiffs.push(...a.diffs.map((d) => d.diff));
      compared += a.diffs.length;
      const f = fb[i]!;
      assert.equal(f.exact + f.missed, f.tokens.length);
      assert.equal(f.tokens.map((x) => x.text).join(''), requests[i]!.response + fmt.end, 'the tokens cover the response and the end marker');
      assert.ok(f.tokens.at(-1)!.isEnd);
      assert.ok(Math.abs(f.logprob - f.tokens.reduce((s, x) => s + x.logprob, 0)) < 1e-9);
      for (const x of f.tokens) assert.ok(Number.isFinite(x.logprob) && x.logprob <= 0 && x.logprob >= -30);
      exact += f.exact;
      missed += f.missed;
      tokens += f.tokens.length;
      requestsMade += f.requests;
    }
    allDiffs.sort((x, y) => x - y);
    const median = allDiffs[allDiffs.length >> 1] ?? 0;
    t.diagnostic(
      `model: ${MODEL.kind}; tokens ${tokens}: exact ${exact}, missed ${missed} (${((100 * missed) / tokens).toFixed(0)}%); ${requestsMade} requests; ` +
        `compared with llama.cpp on ${compared} tokens: |diff| median ${median.toExponential(1)}, max ${(allDiffs.at(-1) ?? 0).toExponential(1)}`,
    );
    assert.ok(median < 1e-4, 'differences are rounding noise, not a systematic offset');
    // A random model rarely walks the tokenizer's split; a trained one nearly always does.
    assert.ok(compared >= (MODEL.kind === 'random' ? 5 : 40), `too few comparable tokens (${compared})`);
    assert.ok(missed > 0, 'ordinary text under this model must produce misses');
    const first = fb[0]!; // scored twice (scoreBatch above), deterministically
    assert.deepEqual(fallback.totals, { exact: exact + first.exact, missed: missed + first.missed, requests: requestsMade + first.requests, responses: requests.length + 1 });
    // What the scorer sent: raw prompts with log-probs, top 20, num_ctx, greedy or top-20 sampling.
    for (const r of server.requestsTo('/api/generate').slice(-requestsMade)) {
      const b = r.body as { raw: boolean; logprobs: boolean; top_logprobs: number; options: { num_ctx: number; temperature: number; top_k: number } };
      assert.equal(b.raw, true);
      assert.equal(b.logprobs, true);
      assert.equal(b.top_logprobs, 20);
      assert.equal(b.options.num_ctx, 1024);
      assert.ok((b.options.temperature === 0 && b.options.top_k === 1) || b.options.top_k === 20);
    }
  });

  test('scoring several responses at once gives the same results', async () => {
    const requests: ScoreRequest[] = ['Tea.', 'Boil it.', 'Hello there!', 'ok'].map((response, i) => ({ prompt: 'Say something.', attributes: i % 2 === 0 ? [] : ['Concise'], response }));
    const one = await new OllamaLogprobScorer(client()).scoreDetailed(requests);
    const three = await new OllamaLogprobScorer(client(), { concurrency: 3 }).scoreDetailed(requests);
    assert.deepEqual(three, one);
  });

  test('fallback scoring is cancelled by the signal', async () => {
    const ac = new AbortController();
    const scorer = new OllamaLogprobScorer(client());
    const p = scorer.scoreBatch([{ prompt: 'p', attributes: [], response: 'Some words the model will not guess at all, many of them.' }], ac.signal);
    setTimeout(() => ac.abort(), 30);
    await assert.rejects(p, (e: Error) => e.name === 'AbortError');
  });
});

/** Token ids whose bytes equal another token's (e.g. "1" and the byte-fallback token <0x31>). */
function vocabularyTwins(engine: LlamaEngine): Set<number> {
  const byBytes = new Map<string, number[]>();
  for (let id = 0; id < engine.modelInfo.vocabSize; id++) {
    const key = Buffer.from(engine.tokenBytes(id)).toString('hex');
    byBytes.set(key, [...(byBytes.get(key) ?? []), id]);
  }
  return new Set([...byBytes.values()].filter((ids) => ids.length > 1).flat());
}

/**
 * The fallback's exact tokens whose context provably equals the llama.cpp scorer's, with both
 * log-probabilities. A token qualifies when (1) the request that reported it started from a
 * prompt that tokenizes exactly as the scorer's prompt + the scorer's first response tokens (the
 * seam), (2) every token of that request up to it has the scorer's token boundaries, and (3) its
 * text has no twin token with the same bytes (the fallback sees text, so it cannot tell "1" from
 * the byte token <0x31>; a trained model never prefers the byte token, a random one may).
 */
function agreement(
  engine: LlamaEngine,
  twins: Set<number>,
  req: ScoreRequest,
  ref: ScoreDetail,
  fb: DetailedScore,
): { diffs: Array<{ text: string; fallback: number; llama: number; diff: number }> } {
  const fmt = engine.promptFormat;
  const rendered = renderPrompt(fmt, req.prompt, req.attributes);
  const prompt = engine.tokenize(rendered, true);
  const response = engine.tokenizeResponse(req.response);
  const starts: number[] = [];
  let acc = 0;
  for (const id of response) {
    starts.push(acc);
    acc += engine.tokenBytes(id).length;
  }
  const bytes = Buffer.from(req.response, 'utf8');
  const seamOk = (offset: number): boolean => {
    const k = offset === acc ? response.length : starts.indexOf(offset);
    if (k < 0) return false;
    const joint = engine.tokenize(rendered + bytes.subarray(0, offset).toString('utf8'), true);
    const want = [...prompt, ...response.slice(0, k)];
    return joint.length === want.length && joint.every((x, i) => x === want[i]);
  };
  const usable = new Map<number, boolean>();
  const diffs: Array<{ text: string; fallback: number; llama: number; diff: number }> = [];
  for (const tok of fb.tokens) {
    if (!usable.has(tok.request)) usable.set(tok.request, seamOk(fb.restarts[tok.request]!));
    const i = tok.isEnd ? response.length : starts.indexOf(tok.start);
    const aligned = tok.isEnd || (i >= 0 && engine.tokenBytes(response[i]!).length === tok.length);
    if (!usable.get(tok.request) || !aligned) {
      usable.set(tok.request, false);
      continue;
    }
    const id = tok.isEnd ? -1 : response[i]!;
    if (!tok.exact || twins.has(id)) continue;
    const llama = ref.tokens[i]!.logprob;
    diffs.push({ text: tok.text, fallback: tok.logprob, llama, diff: Math.abs(llama - tok.logprob) });
  }
  return { diffs };
}
