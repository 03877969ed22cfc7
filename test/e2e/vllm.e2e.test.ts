/**
 * Everything through a vLLM server, in a real VS Code in a real browser: with `exact.backend`
 * "vllm" the project's vLLM-compatible test server (real inference on the fixture model) writes
 * the drafts, the rewrite and the completion, and learning scores on it with prompt
 * log-probabilities; the Ollama test server is running but must not be asked to generate.
 *
 * Screenshots: test/e2e/screenshots/vllm-*.png.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { waitFor, type Workbench } from './harness';
import { skipUnlessReady, startExactSession, type ExactSession } from './exactSession';

const PARAGRAPH = 'I want to cook a simple dinner tonight with pasta and tomatoes.';

describe('EXACT on a vLLM server in a real VS Code', { skip: skipUnlessReady, timeout: 20 * 60_000 }, () => {
  let exact: ExactSession;
  let wb: Workbench;
  let notes: string;

  before(async () => {
    exact = await startExactSession({ screenshotPrefix: 'vllm', files: { 'notes.md': `${PARAGRAPH}\n` }, vllm: true });
    wb = exact.wb;
    notes = path.join(exact.workspace, 'notes.md');
  });

  after(async () => {
    await exact?.close();
  });

  const vllm = () => exact.vllm!;
  const streamed = () => vllm().requestsTo('/v1/completions').filter((r) => (r.body as { stream?: unknown }).stream === true);
  const scored = () => vllm().requestsTo('/v1/completions').filter((r) => (r.body as { prompt_logprobs?: unknown }).prompt_logprobs === 0);
  const ollamaGenerations = () => exact.ollama.requestsTo('/api/generate').length;

  it('drafts stream from the vLLM server, and the choice is learned there with prompt log-probabilities', async () => {
    await wb.runCommand('EXACT: Open Drafts Panel');
    const frame = await exact.drafts();
    await frame.locator('#prompt textarea').fill('How do I make a quick tomato pasta sauce?');
    await frame.locator('#generate').click();
    await waitFor('both drafts', async () => /Which draft is better/.test(await exact.statusText(frame)) || undefined, { timeoutMs: 180_000 });
    const a = (await frame.locator('#text-A').innerText()).trim();
    const b = (await frame.locator('#text-B').innerText()).trim();
    assert.ok(a.length > 0 && b.length > 0, 'both drafts have text');
    assert.equal(streamed().length, 2, 'two streamed generations on the vLLM server');
    await wb.screenshot('01-drafts');
    await frame.locator('#up-A').click();
    await waitFor('choice saved', async () => /^Saved\./.test(await exact.statusText(frame)) || undefined, { timeoutMs: 30_000 });
    await wb.waitForStatusBarItem(/EXACT: 1 prompt learned/, { timeoutMs: 5 * 60_000 });
    const pairs = exact.recordedPairs();
    assert.equal(pairs.length, 1);
    assert.equal(pairs[0]!.chosen.trim(), a);
    const selections = exact.recordedSelections();
    assert.equal(selections.length, 1);
    assert.equal(selections[0]!.pairId, pairs[0]!.id);
    assert.equal(selections[0]!.scorer.kind, 'vllm', 'learned on the vLLM server');
    // The default algorithm decides how many scorer calls a choice takes; each is one request.
    assert.ok(selections[0]!.scorer.calls >= 1);
    assert.equal(scored().length, selections[0]!.scorer.calls, `one scoring request per scorer call (${selections[0]!.algorithm})`);
    await wb.screenshot('02-learned');
  });

  it('Personalized Rewrite is written by the vLLM server', async () => {
    const before = streamed().length;
    await wb.openFile(notes);
    await wb.focusEditor();
    await wb.page.keyboard.press('Control+Home');
    await wb.runCommand('EXACT: Personalized Rewrite');
    await wb.page.locator('.quick-input-widget').waitFor({ state: 'visible' });
    await wb.page.keyboard.press('Enter');
    const note = await wb.waitForNotification(/EXACT rewrote with/, { timeoutMs: 180_000 });
    await wb.screenshot('03-rewrite-diff');
    assert.equal(streamed().length, before + 1, 'the rewrite is one streamed generation on the vLLM server');
    const prompt = (streamed().at(-1)!.body as { prompt: string }).prompt;
    assert.ok(prompt.includes(PARAGRAPH), 'the selection is in the rendered prompt');
    await note.locator('.monaco-button', { hasText: 'Accept' }).click();
    await waitFor('rewrite applied', async () => {
      const text = await wb.editorText();
      return text.trim() !== PARAGRAPH && text.trim().length > 0 ? text : undefined;
    }, { timeoutMs: 30_000 });
    await wb.screenshot('04-rewrite-accepted');
  });

  it('Personalized Completion is written by the vLLM server', async () => {
    const before = streamed().length;
    await wb.openFile(notes);
    await wb.focusEditor();
    const text = await wb.editorText();
    await wb.page.keyboard.press('Control+End');
    await wb.runCommand('EXACT: Personalized Completion');
    await wb.waitForStatusBarItem(/EXACT: continued with/, { timeoutMs: 120_000 });
    const after = await wb.editorText();
    await wb.screenshot('05-completion');
    assert.equal(streamed().length, before + 1, 'one streamed generation on the vLLM server');
    assert.ok(after.startsWith(text.trimEnd()), 'the text before the cursor is kept');
    assert.ok(after.trim().length > text.trim().length, 'something was written after the cursor');
    assert.equal(ollamaGenerations(), 0, 'Ollama was never asked to generate');
  });

  it('the profile says which scorer learns and why, and where scoring runs', async () => {
    await wb.runCommand('EXACT: Show Attribute Profile');
    const frame = await wb.webviewFrame('EXACT Attribute Profile');
    const reason = (await frame.locator('#scorer-reason').innerText()).trim();
    assert.match(reason, /^Scoring on the vLLM server at .+ from its prompt log-probabilities .*exact\.backend is "vllm" and exact\.scorer is "auto"\.$/u, reason);
    const scoring = (await frame.locator('p.scoring').innerText()).trim();
    assert.match(scoring, /^Scoring on the vLLM server at http:\/\/127\.0\.0\.1:\d+ \(on whatever that server runs on\)\.$/u, scoring);
    await wb.screenshot('06-profile');
  });
});
