/**
 * The README's main job (`npm run demo`): the whole method in-process on the fixture model, run
 * as a user runs it, checked on what it prints.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

test('the demo records, learns, explains and generates with and without EXACT', { timeout: 10 * 60_000 }, async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'bench/demo.ts'], { cwd: ROOT, maxBuffer: 16 << 20, env: { ...process.env, NO_COLOR: '1' } });
  const text = stdout.replace(/\u001b\[[0-9;]*m/gu, '');
  assert.match(text, /\d+ indexed prompts/u);
  assert.match(text, /attribute frequencies:/u);
  assert.match(text, /topic modes/u);
  const prompts = [...text.matchAll(/retrieved: (.+?) {3}planted for (\w+): (.+)/gu)];
  assert.equal(prompts.length, 2, 'two new prompts on different topics');
  for (const [, retrieved] of prompts) assert.notEqual(retrieved!.trim(), '(none)');
  const plain = [...text.matchAll(/without EXACT: ([\s\S]*?)\n {5}with EXACT </gu)].map((m) => m[1]!.replace(/\s+/gu, ' ').trim());
  assert.equal(plain.length, 2, text.slice(-2000));
  for (const p of plain) {
    assert.ok(p.length > 0 && !p.includes('[object'), `a plain generation is printed: ${JSON.stringify(p)}`);
  }
  assert.match(text, /with EXACT <[^>]+>: \S/u);
  assert.match(text, /done in [\d.]+ s/u);
});
