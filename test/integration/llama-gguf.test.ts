/**
 * The random GGUF writer (test/support/randomGguf.ts): deterministic files that llama.cpp loads,
 * a vocabulary SentencePiece can reach, and a 32k-vocabulary model built quickly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readGgufFileInfo } from 'node-llama-cpp';
import { LlamaEngine } from '../../src/engines/llama/llamaEngine';
import { buildRandomLlamaGguf, charVocabulary, MIN_VOCAB_SIZE, randomLlamaModelPath } from '../support/randomGguf';

test('the vocabulary is unique and prefix-closed, with ChatML specials and byte fallback', () => {
  for (const size of [MIN_VOCAB_SIZE, 512, 32000]) {
    const v = charVocabulary(size);
    assert.equal(v.tokens.length, size);
    assert.equal(new Set(v.tokens).size, size);
    const all = new Set(v.tokens);
    for (const t of v.tokens.slice(MIN_VOCAB_SIZE)) assert.ok(all.has([...t].slice(0, -1).join('')), `prefix of ${t}`);
    assert.deepEqual(v.tokens.slice(0, 5), ['<unk>', '<s>', '</s>', '<|im_start|>', '<|im_end|>']);
    assert.equal(v.tokens[5 + 0x0a], '<0x0A>');
  }
  assert.throws(() => charVocabulary(100), /vocabSize must be an integer >= 356/u);
});

test('files are deterministic in their options and carry what llama.cpp needs', async () => {
  const a = buildRandomLlamaGguf({ seed: 5, vocabSize: 400 });
  assert.ok(a.equals(buildRandomLlamaGguf({ seed: 5, vocabSize: 400 })));
  assert.ok(!a.equals(buildRandomLlamaGguf({ seed: 6, vocabSize: 400 })));
  const info = await readGgufFileInfo(randomLlamaModelPath({ seed: 5, vocabSize: 400, layers: 3, heads: 2, headsKv: 1, contextLength: 256 }));
  const md = info.metadata as unknown as Record<string, Record<string, unknown>>;
  assert.equal(info.version, 3);
  assert.equal(md.general!.architecture, 'llama');
  assert.equal((md.llama as Record<string, unknown>).block_count, 3);
  assert.equal((md.llama as Record<string, unknown>).context_length, 256);
  assert.match(String(md.tokenizer!.chat_template), /<\|im_start\|>/u);
  assert.equal(info.tensorInfo?.length, 3 + 3 * 9);
});

test('llama.cpp loads a grouped-query model and round-trips text through its tokenizer', async () => {
  const engine = await LlamaEngine.load(randomLlamaModelPath({ seed: 5, vocabSize: 400, layers: 3, heads: 4, headsKv: 2, contextLength: 256 }), { contextSize: 256 });
  try {
    const text = 'Héllo, wörld!\n\tTabs & emoji 😀 stay intact.';
    assert.equal(engine.detokenize(engine.tokenize(text)), text);
    assert.deepEqual(engine.tokenize('<|im_start|>user\n', true).slice(0, 1), [3]);
    const [score] = await engine.score([{ prompt: 'Hi', attributes: [], response: text }]);
    assert.ok(Number.isFinite(score) && score! < 0);
  } finally {
    await engine.dispose();
  }
});

test('a 32k-vocabulary model builds in seconds and scores', async (t) => {
  const t0 = performance.now();
  const buf = buildRandomLlamaGguf({ seed: 9, vocabSize: 32000, embeddingLength: 64, layers: 1 });
  const ms = performance.now() - t0;
  t.diagnostic(`32k vocabulary, d64, 1 layer: ${(buf.length / 1e6).toFixed(1)} MB built in ${ms.toFixed(0)} ms`);
  assert.ok(buf.length > 32000 * 64 * 2, 'the file holds a 32k x 64 embedding table');
  const engine = await LlamaEngine.load(randomLlamaModelPath({ seed: 9, vocabSize: 32000, embeddingLength: 64, layers: 1 }), { contextSize: 1024 });
  try {
    assert.equal(engine.modelInfo.vocabSize, 32000);
    const text = 'the quick brown fox jumps over the lazy dog';
    const tokens = engine.tokenize(text);
    assert.ok(tokens.length < text.length / 2, `multi-character pieces are used (${tokens.length} tokens)`);
    const t1 = performance.now();
    const [d] = await engine.scoreDetailed([{ prompt: 'Hi', attributes: [], response: text }]);
    t.diagnostic(`scored ${d!.tokens.length} tokens over a 32k vocabulary in ${(performance.now() - t1).toFixed(0)} ms`);
    // Cancellation waits for at most one evaluation call (131 scored positions at 32k), not a
    // whole sequence: this one is several calls long.
    const controller = new AbortController();
    const long = `${text} `.repeat(45);
    assert.ok(engine.tokenizeResponse(long).length > 3 * 131, 'the sequence spans several evaluation calls');
    const running = engine.score([{ prompt: 'Hi', attributes: [], response: long }], controller.signal);
    await new Promise((r) => setTimeout(r, 100));
    const t2 = performance.now();
    const fedAtAbort = engine.scoreStats.evaluatedTokens;
    controller.abort();
    await assert.rejects(running, (e: Error) => e.name === 'AbortError');
    const latency = performance.now() - t2;
    const fedAfter = engine.scoreStats.evaluatedTokens - fedAtAbort;
    t.diagnostic(`cancelled a 32k-vocabulary sequence in ${latency.toFixed(0)} ms; ${fedAfter} tokens fed after the abort`);
    // Work done, not time: at most the one evaluation call in flight (<= 131 scored positions plus
    // the unscored prompt) finishes after the abort, far less than the sequence.
    assert.ok(fedAfter <= 131 + 16, `at most one evaluation call after the abort (${fedAfter} tokens)`);
    assert.ok(engine.scoreStats.evaluatedTokens < engine.tokenizeResponse(long).length, 'the sequence was not scored to its end');
  } finally {
    await engine.dispose();
  }
});
