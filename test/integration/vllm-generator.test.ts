/**
 * Generation on a vLLM server (VllmGenerator): streamed, rendered by the one renderer, cancellable;
 * the vLLM-compatible test server generates with real inference on the fixture model.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { LlamaEngine } from '../../src/engines/llama/llamaEngine';
import { renderPrompt } from '../../src/engines/promptFormat';
import { resolveVllmConfig, VllmClient, VllmError } from '../../src/engines/vllm/client';
import { VllmGenerator } from '../../src/engines/vllm/generator';
import { testModelPath } from '../support/ollamaServer';
import { VllmTestServer } from '../support/vllmServer';

let engine: LlamaEngine;
let server: VllmTestServer;
let generator: VllmGenerator;

before(async () => {
  engine = await LlamaEngine.load(testModelPath().path, { threads: 1 });
  server = await VllmTestServer.start({ engine });
  generator = new VllmGenerator(new VllmClient(resolveVllmConfig({ baseUrl: server.url, model: server.model })));
});

after(async () => {
  await server.close();
  await engine.dispose();
});

test('streams the text in-process llama.cpp writes for the same rendered prompt and seed', async () => {
  const prompt = 'How do I cook rice?';
  const pieces: string[] = [];
  const got = await generator.generate(prompt, ['Concise'], { seed: 7, temperature: 0.7, topK: 50, topP: 0.95, maxTokens: 80 }, (t) => pieces.push(t));
  const want = await engine.generate({ prompt, attributes: ['Concise'] }, { seed: 7, temperature: 0.7, topK: 50, topP: 0.95, maxTokens: 80 });
  assert.ok(want.text.length > 0);
  assert.equal(got.text, want.text);
  assert.equal(pieces.join(''), got.text);
  assert.ok(pieces.length > 1, 'streamed in pieces');
  assert.equal(got.stoppedAtLimit, want.doneReason === 'length');
  const body = server.requestsTo('/v1/completions').at(-1)!.body as Record<string, unknown>;
  assert.equal(body.prompt, renderPrompt(engine.promptFormat, prompt, ['Concise']));
  assert.equal(body.stream, true);
  assert.deepEqual(body.stop, [engine.promptFormat.end]);
  assert.equal(body.add_special_tokens, false);
});

test('a token limit that cuts the answer says so', async () => {
  const got = await generator.generate('Tell me a story about a trip to Rome.', ['Storyteller'], { seed: 1, maxTokens: 5 });
  assert.equal(got.stoppedAtLimit, true);
  assert.ok(got.text.length > 0);
});

test('cancelling mid-stream rejects with AbortError and the server goes on serving', async () => {
  const controller = new AbortController();
  let seen = 0;
  const pending = generator.generate('Tell me a story about a trip to Rome.', ['Storyteller'], { seed: 2, maxTokens: 200 }, () => {
    seen += 1;
    if (seen === 2) controller.abort();
  }, controller.signal);
  await assert.rejects(pending, { name: 'AbortError' });
  assert.equal(seen, 2);
  const again = await generator.generate('How do I cook rice?', [], { seed: 3, maxTokens: 20 });
  assert.ok(again.text.length > 0);
});

test('a stalled stream times out; an error reply is a typed error', async () => {
  const slow = new VllmGenerator(new VllmClient(resolveVllmConfig({ baseUrl: server.url, model: server.model, firstTokenTimeoutMs: 100, retries: 0 })));
  server.delayMs = 2000;
  try {
    const err = await slow.generate('How do I cook rice?', [], { maxTokens: 5 }).catch((e: unknown) => e);
    assert.ok(err instanceof VllmError, String(err));
    assert.equal(err.kind, 'timeout');
  } finally {
    server.delayMs = 0;
  }
  server.failNext = { status: 400, count: 1 };
  const err = await generator.generate('How do I cook rice?', [], { maxTokens: 5 }).catch((e: unknown) => e);
  assert.ok(err instanceof VllmError);
  assert.equal(err.kind, 'rejected');
  assert.equal(err.status, 400);
});
