import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countOf } from '../../src/shared/plural';
import { MAX_MESSAGE_TEXT, parseWebviewMessage } from '../../src/shared/protocol';

test('well-formed webview messages are accepted and copied field by field', () => {
  assert.deepEqual(parseWebviewMessage({ type: 'ready' }), { type: 'ready' });
  assert.deepEqual(parseWebviewMessage({ type: 'openSideBySide', extra: 1 }), { type: 'openSideBySide' });
  assert.deepEqual(parseWebviewMessage({ type: 'generate', prompt: 'hi', extra: 'dropped' }), { type: 'generate', prompt: 'hi' });
  assert.deepEqual(
    parseWebviewMessage({ type: 'choose', requestId: 'r1', preferred: 'B', preferredText: 'b', rejectedText: 'a' }),
    { type: 'choose', requestId: 'r1', preferred: 'B', preferredText: 'b', rejectedText: 'a' },
  );
  assert.deepEqual(parseWebviewMessage({ type: 'editAttributes', pairId: 'p', attributes: ['Concise'] }), {
    type: 'editAttributes',
    pairId: 'p',
    attributes: ['Concise'],
  });
});

test('malformed, unknown or oversized messages are rejected', () => {
  const bad: unknown[] = [
    null,
    'ready',
    [],
    { type: 'nope' },
    { type: 'generate' },
    { type: 'generate', prompt: 42 },
    { type: 'generate', prompt: 'x'.repeat(MAX_MESSAGE_TEXT + 1) },
    { type: 'choose', requestId: 'r', preferred: 'C', preferredText: '', rejectedText: '' },
    { type: 'choose', requestId: 'r', preferred: 'A', preferredText: 'x' },
    { type: 'editAttributes', pairId: 'p', attributes: 'Concise' },
    { type: 'editAttributes', pairId: 'p', attributes: [1] },
    { type: 'deleteEntry', pairId: 'x'.repeat(201) },
    { type: '__proto__' },
  ];
  for (const m of bad) assert.equal(parseWebviewMessage(m), undefined, JSON.stringify(m)?.slice(0, 80));
});

test('counts read in the right number', () => {
  assert.equal(countOf(1, 'prompt'), '1 prompt');
  assert.equal(countOf(0, 'prompt'), '0 prompts');
  assert.equal(countOf(2, 'new choice'), '2 new choices');
  assert.equal(countOf(3, 'entry', 'entries'), '3 entries');
});
