/**
 * The Personalizer (Algorithm 2 and the drafts flow) on real parts: a PreferenceMemory on disk
 * holding selections made by greedy search on the fixture model, the local embedder, and
 * generation through the Ollama client against the Ollama-compatible test server.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { attributeGain, confidentProfile, greedySelect, type GeneratedText, type GenerationOptions, type TextGenerator } from '../../src/core';
import { LocalHashEmbedder } from '../../src/engines/embeddings';
import { LlamaEngine } from '../../src/engines/llama/llamaEngine';
import { OllamaClient } from '../../src/engines/ollama/client';
import { resolveOllamaConfig } from '../../src/engines/ollama/config';
import { OllamaGenerator } from '../../src/engines/ollama/generator';
import {
  completionPrompt,
  continuationText,
  ContextTooSmallError,
  estimateTokens,
  fittingTail,
  EmptyInputError,
  InputTooLargeError,
  Personalizer,
  rewritePrompt,
  rewriteTokenBudget,
  type PersonalizerSettings,
} from '../../src/services/personalizer';
import { PreferenceMemory } from '../../src/storage';
import { OllamaTestServer, testModelPath } from '../support/ollamaServer';

const LIBRARY = ['Concise', 'Formal', 'Humor', 'Storyteller', 'Direct', 'Vivid'];
const COOKING = { prompt: 'How do I make a quick tomato pasta sauce?', chosen: 'Simmer tomatoes with garlic for ten minutes.', rejected: 'Once upon a time, in a small kitchen, a pot of tomatoes began to sing a long and winding song.' };
const CHESS = { prompt: 'Which chess opening should a beginner learn first?', chosen: 'Learn the Italian Game.', rejected: 'Start with the Italian Game, then try the London System.' };
const TRAVEL = { prompt: 'What should I pack for a week in Lisbon?', chosen: 'Oh, let me tell you a story: the first time I went to Lisbon, I packed three coats and a lot of hope.', rejected: 'Pack light layers.' };

/** Counts the generator calls and the options they got, then hands them to the real generator. */
class Recording implements TextGenerator {
  readonly calls: GenerationOptions[] = [];
  constructor(private readonly inner: TextGenerator) {}
  generate(prompt: string, attributes: ReadonlyArray<string>, options: GenerationOptions, onToken?: (t: string) => void, signal?: AbortSignal): Promise<GeneratedText> {
    this.calls.push(options);
    return this.inner.generate(prompt, attributes, options, onToken, signal);
  }
}

describe('Personalizer on a real memory, embedder and Ollama-compatible server', () => {
  let engine: LlamaEngine;
  let server: OllamaTestServer;
  let dir: string;
  let memory: PreferenceMemory;
  let generator: Recording;
  const embedder = new LocalHashEmbedder();
  const selected = new Map<string, string[]>();
  const settings = (over: Partial<PersonalizerSettings> = {}): PersonalizerSettings => ({
    k: 2,
    retrievalMode: 'top1',
    neighbors: 3,
    decoding: { temperature: 0.7, topK: 50, topP: 0.95, maxTokens: 40, seed: 5 },
    maxInputChars: 2000,
    contextTokens: 1024,
    ...over,
  });
  const personalizer = (over: Partial<PersonalizerSettings> = {}): Personalizer => new Personalizer(memory, embedder, generator, settings(over), () => LIBRARY);

  before(async () => {
    engine = await LlamaEngine.load(testModelPath().path, { threads: 1, contextSize: 1024 });
    server = await OllamaTestServer.start({ engine });
    const client = new OllamaClient(resolveOllamaConfig({ host: server.url, model: server.modelName, numCtx: 1024, maxTokens: 40 }, {}));
    generator = new Recording(new OllamaGenerator(client));
    dir = mkdtempSync(path.join(os.tmpdir(), 'exact-personalizer-'));
    memory = await PreferenceMemory.open(dir, { models: { model: 'exact-tiny', embeddingModel: embedder.id } });
    for (const p of [COOKING, TRAVEL]) {
      const pair = await memory.recordPair({ ...p, source: 'test' });
      const result = await greedySelect({ scoreBatch: (requests, signal) => engine.score(requests, signal) }, pair, LIBRARY, { k: 2 });
      const [vector] = await embedder.embed([p.prompt]);
      await memory.storeSelection({ pairId: pair.id, result, embedding: vector!, scorerKind: 'llama.cpp', algorithm: 'greedy', k: 2, durationMs: 0 });
      selected.set(p.prompt, result.attributes);
    }
    // A choice nothing explains at this significance: stored with no attributes, and still an index entry.
    const chess = await memory.recordPair({ ...CHESS, source: 'test' });
    const result = await greedySelect({ scoreBatch: (requests, signal) => engine.score(requests, signal) }, chess, LIBRARY, { k: 2, significance: 1000 });
    const [vector] = await embedder.embed([CHESS.prompt]);
    await memory.storeSelection({ pairId: chess.id, result, embedding: vector!, scorerKind: 'llama.cpp', algorithm: 'greedy', k: 2, durationMs: 0 });
    selected.set(CHESS.prompt, result.attributes);
  });

  after(async () => {
    await memory?.close();
    await server?.close();
    await engine?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('generate injects the attributes of the most similar past prompt and says where they came from', async () => {
    const r = await personalizer().generate('How do I make a quick tomato soup?');
    assert.deepEqual(r.retrieval.attributes, selected.get(COOKING.prompt));
    assert.equal(r.retrieval.source, 'nearest');
    assert.match(r.retrieval.why, /How do I make a quick tomato pasta sauce\?/);
    assert.ok(r.text.length > 0);
    const t = await personalizer().generate('What should I pack for a week in Porto?');
    assert.deepEqual(t.retrieval.attributes, selected.get(TRAVEL.prompt));
  });

  // Kills the mutation "the generator drops the attributes" (or injects others): the raw prompt
  // Ollama received must carry exactly the retrieved attributes block, written out here by hand.
  test('the generation request carries exactly the retrieved attributes block, once, after the prompt', async () => {
    const attributesIn = (raw: string): string[] => [...raw.matchAll(/^Attributes: <([^<>\n]*)>/gmu)].map((m) => m[1]!);
    const lastGenerate = (): string => (server.requestsTo('/api/generate').at(-1)!.body as { prompt: string }).prompt;
    const prompt = 'How do I make a quick tomato soup?';
    const r = await personalizer().generate(prompt);
    const expected = selected.get(COOKING.prompt)!;
    assert.ok(expected.length > 0, 'the stored selection has attributes to carry');
    assert.deepEqual(r.retrieval.attributes, expected);
    const raw = lastGenerate();
    assert.ok(raw.includes(`${prompt}\nAttributes: <${expected.join(', ')}>`), raw);
    assert.deepEqual(attributesIn(raw), [expected.join(', ')]);
    // Each draft carries its own plan's block: A the retrieved set, B the exploratory one.
    const plans = await personalizer().planDrafts(prompt, undefined, 3);
    for (const plan of plans) {
      await personalizer().generateDraft(prompt, plan, () => undefined);
      assert.deepEqual(attributesIn(lastGenerate()), [plan.attributes.join(', ')], plan.slot);
    }
    // With nothing to inject the prompt goes out without a block.
    await personalizer().generate(prompt, { retrieval: { ...r.retrieval, attributes: [] } });
    assert.deepEqual(attributesIn(lastGenerate()), []);
    assert.ok(lastGenerate().includes(prompt));
  });

  test('an unexplained choice is an index entry without attributes, and the abstaining retrieval injects nothing for its prompt and says why', async () => {
    assert.deepEqual(selected.get(CHESS.prompt), []);
    const entry = (await memory.indexEntries()).find((e) => e.prompt === CHESS.prompt);
    assert.deepEqual(entry?.attributes, []);
    generator.calls.length = 0;
    const r = await personalizer({ retrievalMode: 'abstain', abstention: { minAgreement: 0, similarityFloor: 0.1 } }).generate('Which chess opening should a beginner learn?');
    assert.deepEqual([r.retrieval.attributes, r.retrieval.source, r.retrieval.reason], [[], 'none', 'unexplained']);
    assert.match(r.retrieval.why, /^No attributes: no attribute explained your choice on your most similar past prompt “Which chess opening/u);
    assert.equal(generator.calls.length, 1, 'the prompt is still answered, without attributes');
  });

  test('abstaining retrieval: the nearest prompt when similar, the confident profile or nothing when not, each explained', async () => {
    const abstaining = (abstention = {}) => personalizer({ retrievalMode: 'abstain', abstention: { minAgreement: 0, ...abstention } });
    const near = await abstaining({ similarityFloor: 0.1 }).retrieve('How do I make a quick tomato soup?');
    assert.deepEqual([near.attributes, near.source], [selected.get(COOKING.prompt), 'nearest']);
    assert.match(near.why, /^From your most similar past prompt “How do I make a quick tomato pasta sauce\?” \(similarity 0\.\d\d\)\.$/u);
    const items = await memory.memoryItems();
    for (const confidence of [0.3, 0.9]) {
      const far = await abstaining({ similarityFloor: 0.99, profileConfidence: confidence }).retrieve('How do I make a quick tomato soup?');
      const profile = confidentProfile(items, confidence, 2);
      assert.deepEqual([far.attributes, far.reason, far.source], [profile, 'dissimilar', profile.length > 0 ? 'global' : 'none']);
      assert.match(far.why, profile.length > 0 ? /^Your overall profile's most consistent attributes, because no past prompt is similar enough/u : /^No attributes: no past prompt is similar enough .* no attribute is in most of your learned choices/u);
    }
  });

  test('leave-one-out accuracy counts every analysed choice (unexplained ones included) through the request path, with harm', async () => {
    const p = personalizer({ retrievalMode: 'abstain', abstention: { minAgreement: 0, similarityFloor: -1, profileConfidence: 1 } });
    const scorer = { scoreBatch: (requests: Parameters<LlamaEngine['score']>[0], signal?: AbortSignal) => engine.score(requests, signal) };
    const report = await p.leaveOneOutAccuracy(scorer);
    assert.equal(report.total, 3);
    // With every floor off, each held-out prompt gets its nearest other entry's attributes: check each gain against the scorer.
    const items = await memory.memoryItems();
    const pairs = await memory.listPairs();
    for (const [i, pair] of pairs.entries()) {
      const decided = (await p.retrieve(pair.prompt)).neighbors.find((n) => n.prompt !== pair.prompt);
      const others = items.filter((it) => it.prompt !== pair.prompt);
      assert.ok(others.length === 2 && decided !== undefined);
      const expected = decided.attributes.length === 0 ? 0 : (await attributeGain(scorer, pair, decided.attributes)).gain;
      assert.equal(report.gains[i], expected, pair.prompt);
    }
    assert.equal(report.harmed, report.gains.filter((g) => g < 0).length);
    assert.equal(report.harmRate, report.harmed / 3);
    assert.equal(report.accuracy, report.gains.filter((g) => g > 0).length / 3);
  });

  test('hitting the token limit is reported, and a larger limit for one call is passed through', async () => {
    const short = await personalizer({ decoding: { ...settings().decoding, maxTokens: 3 } }).generate('Tell me a long story about Lisbon.');
    assert.equal(short.stoppedAtLimit, true, `3 tokens cannot finish an answer: ${JSON.stringify(short.text)}`);
    generator.calls.length = 0;
    const long = await personalizer({ decoding: { ...settings().decoding, maxTokens: 3 } }).generate('Tell me a long story about Lisbon.', { maxTokens: 300 });
    assert.equal(generator.calls[0]?.maxTokens, 300, 'the per-call limit reached the generator');
    assert.equal(long.maxTokens, 300);
    assert.ok(long.text.length > short.text.length);
    // A per-call limit below the setting does not lower it.
    generator.calls.length = 0;
    await personalizer().generate('Hi', { maxTokens: 5 });
    assert.equal(generator.calls[0]?.maxTokens, 40);
  });

  test('a rewrite gets room for its whole input, and what cannot fit the context is refused before generating', async () => {
    const text = 'word '.repeat(600); // 3,000 characters
    const budget = rewriteTokenBudget(text);
    assert.equal(budget, Math.ceil((3000 / 3) * 1.5) + 64);
    generator.calls.length = 0;
    const p = personalizer({ maxInputChars: 20_000 });
    assert.throws(() => p.checkRequest(rewritePrompt(text), budget), ContextTooSmallError);
    await assert.rejects(p.generate(rewritePrompt(text), { maxTokens: budget }), (e: Error) => {
      assert.ok(e instanceof ContextTooSmallError);
      assert.match(e.message, /context holds 1,024 .*exact\.ollama\.contextLength.*Select a shorter passage/u);
      return true;
    });
    await assert.rejects(p.planDrafts(text), ContextTooSmallError);
    assert.equal(generator.calls.length, 0, 'nothing was sent to Ollama');
  });

  test('a completion at the end of a long document carries the most recent text that fits, in any script', async () => {
    const p = personalizer({ maxInputChars: 20_000 });
    for (const doc of ['word '.repeat(5000), '漢字の文章。'.repeat(1000), 'mixed 混合 '.repeat(2000)]) {
      const tail = p.completionContext(doc);
      assert.ok(doc.endsWith(tail) && tail.length > 100, `a long tail is kept (${tail.length} characters)`);
      assert.doesNotThrow(() => p.checkRequest(completionPrompt(tail)), 'the completion request fits');
      // ...and not much more would have: one more estimated token's worth breaks the budget.
      const room = 1024 - 40 - (64 + 14 * 2) - estimateTokens(completionPrompt(''));
      assert.ok(estimateTokens(tail) <= room && estimateTokens(doc.slice(-(tail.length + 4))) > room - 2, `tail uses the room: ${estimateTokens(tail)} of ${room}`);
    }
    // The character limit applies too (the instruction counts against it).
    assert.equal(p.completionContext('abc '.repeat(100), 50).length, 50);
    assert.equal(fittingTail('abcdef', 1, 100), 'def');
    assert.equal(fittingTail('😀😀b', 2, 100), '😀b', 'a surrogate pair is one character, never split');
    // A context that leaves no room for any text is reported as such.
    assert.throws(() => personalizer({ contextTokens: 150 }).completionContext('Some text.'), ContextTooSmallError);
    await assert.rejects(p.generate(completionPrompt('x'.repeat(19_990))), InputTooLargeError);
  });

  test('empty or oversized input and identical drafts are refused with what to do, and nothing is recorded', async () => {
    const p = personalizer();
    await assert.rejects(p.generate('   \n'), EmptyInputError);
    await assert.rejects(p.generate('x'.repeat(2001)), (e: Error) => e instanceof InputTooLargeError && /exact\.maxInputCharacters/.test(e.message));
    const before = (await memory.listPairs()).length;
    await assert.rejects(p.recordChoice('A prompt', 'Same text.', ' Same text. '), /identical.*Edit one or skip/);
    assert.equal((await memory.listPairs()).length, before);
  });

  test('drafts: A uses the retrieved attributes, B explores attributes A does not have', async () => {
    const plans = await personalizer().planDrafts('How do I make a quick tomato soup?', undefined, 11);
    assert.deepEqual(plans[0]!.attributes, selected.get(COOKING.prompt));
    assert.equal(plans[1]!.attributes.length, 2);
    assert.ok(plans[1]!.attributes.every((a) => LIBRARY.includes(a) && !plans[0]!.attributes.includes(a)), JSON.stringify(plans));
    const drafted = await personalizer().generateDraft('How do I make a quick tomato soup?', plans[1]!, () => undefined);
    assert.ok(drafted.text.length > 0);
  });
});

test('a continuation joins the text before it with one space between words and none before punctuation', () => {
  assert.equal(continuationText('The beans', 'need an hour.'), ' need an hour.');
  assert.equal(continuationText('The beans', ', soaked, need an hour.'), ', soaked, need an hour.');
  assert.equal(continuationText('The beans ', '  need an hour.  \n'), 'need an hour.');
  assert.equal(continuationText('The beans.', '\n\nNext paragraph.\nThen salt.'), '\n\nNext paragraph.\nThen salt.', 'a new paragraph keeps its break');
  assert.equal(continuationText('The beans', '\n\nneed an hour.\r\nThen salt.', true), ' need an hour.');
  assert.equal(continuationText('Line one.\n', '\nNext line.'), 'Next line.');
  assert.equal(continuationText('', 'Start.'), 'Start.');
  assert.equal(continuationText('The beans', '   \n  '), '');
});
