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

test('keepEdits: the drafts page hands the host its edits (so a window reload cannot lose them); anything else is refused', () => {
  const good = { type: 'keepEdits', requestId: 'r1', edits: { A: { text: 'my edit', open: true }, B: { text: 'closed edit', open: false } } };
  assert.deepEqual(parseWebviewMessage(good), good);
  const extra = parseWebviewMessage({ ...good, edits: { A: { text: 'x', open: false, injected: 1 } } });
  assert.deepEqual(extra, { type: 'keepEdits', requestId: 'r1', edits: { A: { text: 'x', open: false } } }, 'copied field by field');
  for (const edits of [{ C: { text: 'x', open: true } }, { A: { text: 1, open: true } }, { A: { text: 'x' } }, { A: { text: 'x'.repeat(MAX_MESSAGE_TEXT + 1), open: true } }, 'A']) {
    assert.equal(parseWebviewMessage({ type: 'keepEdits', requestId: 'r1', edits }), undefined, JSON.stringify(edits).slice(0, 60));
  }
});

test('counts read in the right number', () => {
  assert.equal(countOf(1, 'prompt'), '1 prompt');
  assert.equal(countOf(0, 'prompt'), '0 prompts');
  assert.equal(countOf(2, 'new choice'), '2 new choices');
  assert.equal(countOf(3, 'entry', 'entries'), '3 entries');
});
