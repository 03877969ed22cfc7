/**
 * The EXACT scenario in a real VS Code (code-server) in a real browser (Debian chromium), with
 * the extension installed from the built .vsix and Ollama played by the project's
 * Ollama-compatible test server on the fixture model:
 *
 *   drafts (6 choices over 2 topics) -> background indexing -> Personalized Rewrite on a
 *   cooking paragraph injects a cooking prompt's attributes -> the profile shows them ->
 *   the window reloads and the data is still there.
 *
 * Screenshots of every step: test/e2e/screenshots/exact-*.png.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { waitFor, type Workbench } from './harness';
import { skipUnlessReady, startExactSession, type ExactSession } from './exactSession';

const COOKING = ['How do I make a quick tomato pasta sauce?', 'How long should I boil eggs for a soft yolk?', 'What is a good way to season roasted vegetables?'];
const TRAVEL = ['What should I pack for a week in Lisbon?', 'How do I find cheap flights to Tokyo?', 'Is it worth getting a rail pass for Italy?'];
const COOKING_PARAGRAPH = 'I want to cook a simple dinner tonight with pasta and tomatoes. What is the easiest way to make the sauce taste good?';
const TRAVEL_PARAGRAPH = 'Next month I am flying to Lisbon for a week and I have never been there before.';

describe('EXACT in a real VS Code', { skip: skipUnlessReady, timeout: 20 * 60_000 }, () => {
  let exact: ExactSession;
  let wb: Workbench;
  let workspace: string;
  const chosen = new Map<string, 'short' | 'long'>();

  before(async () => {
    // This scenario checks the paper's path end to end (the rewrite names its nearest past prompt), so it
    // pins top-1 retrieval and k = 3 attributes per choice (no chance-level stopping); the default path is covered by
    // test/integration/personalizer.test.ts on the same model.
    exact = await startExactSession({
      screenshotPrefix: 'exact',
      files: { 'notes.md': `${COOKING_PARAGRAPH}\n\n${TRAVEL_PARAGRAPH}\n` },
      settings: { 'exact.retrieval.mode': 'top1', 'exact.indexing.significance': -1 },
    });
    ({ wb, workspace } = exact);
  });

  after(async () => {
    await exact?.close();
  });

  const drafts = () => exact.drafts();
  const statusText: ExactSession['statusText'] = (frame) => exact.statusText(frame);

  it('collects choices in the drafts view', async () => {
    await wb.runCommand('EXACT: Open Drafts Panel');
    let frame = await drafts();
    await frame.locator('#prompt').waitFor({ state: 'visible', timeout: 60_000 });
    await wb.screenshot('01-drafts-view');
    let n = 0;
    for (const [topic, prompts] of [['cooking', COOKING], ['travel', TRAVEL]] as const) {
      for (const prompt of prompts) {
        n++;
        await wb.step(`choice-${n}`, async () => {
          frame = await drafts();
          await frame.locator('#prompt textarea').fill(prompt);
          await frame.locator('#generate').click();
          await waitFor(`drafts for "${prompt}"`, async () => /Which draft is better/.test(await statusText(frame)) || undefined, { timeoutMs: 180_000 });
          const a = await frame.locator('#text-A').innerText();
          const b = await frame.locator('#text-B').innerText();
          const tags = await frame.locator('#draft-A .tag').allTextContents();
          assert.ok(a.length > 0 && b.length > 0, 'both drafts have text');
          assert.ok(tags.length > 0, 'draft A is labelled with its attributes');
          if (n === 1) await wb.screenshot('02-drafts-generated');
          // A planted user: short answers about cooking, long ones about travel.
          const wantShort = topic === 'cooking';
          const pick = (a.length <= b.length) === wantShort ? 'A' : 'B';
          chosen.set(prompt, wantShort ? 'short' : 'long');
          await frame.locator(`#up-${pick}`).click();
          await waitFor('choice saved', async () => /^Saved\./.test(await statusText(frame)) || undefined, { timeoutMs: 30_000 });
          if (n === 1) await wb.screenshot('03-choice-saved');
        });
      }
    }
    assert.equal(chosen.size, 6);
  });

  it('learns from the choices in the background and says so in the status bar', async () => {
    await wb.step('indexing', async () => {
      await waitFor('indexing to start or finish', async () => (await wb.statusBarTexts()).find((t) => /EXACT: (indexing|\d+ prompts? learned)/.test(t)), { timeoutMs: 60_000 });
      const shot = await wb.screenshot('04-status-bar');
      assert.ok(shot);
      const learned = await waitFor(
        'all six choices learned',
        async () => {
          const t = (await wb.statusBarTexts()).find((s) => /EXACT: \d+ prompts? learned/.test(s));
          const m = t ? /EXACT: (\d+) prompts? learned/.exec(t) : null;
          return m && Number(m[1]) >= 6 ? Number(m[1]) : undefined;
        },
        { timeoutMs: 8 * 60_000 },
      );
      assert.ok(learned >= 6, `status bar shows ${learned} prompts learned`);
    });
  });

  let rewriteAttributes: string[] = [];
  let rewriteSource = '';

  it('Personalized Rewrite on a cooking paragraph injects a cooking prompt’s attributes', async () => {
    await wb.openFile(path.join(workspace, 'notes.md'));
    await wb.focusEditor();
    await wb.page.keyboard.press('Control+Home');
    await wb.runCommand('EXACT: Personalized Rewrite');
    await wb.step('instruction', async () => {
      await wb.page.locator('.quick-input-widget').waitFor({ state: 'visible' });
      await wb.screenshot('05-rewrite-instruction');
      await wb.page.keyboard.press('Enter');
    });
    const note = await wb.waitForNotification(/EXACT rewrote with/, { timeoutMs: 180_000 });
    const message = (await note.locator('.notification-list-item-message').innerText()).trim();
    await wb.screenshot('06-rewrite-diff');
    const m = /EXACT rewrote with (.*?)\. From your most similar past prompt “(.*?)” \(similarity (-?[\d.]+)\)/.exec(message);
    assert.ok(m, `rewrite explains its attributes: ${message}`);
    rewriteAttributes = m[1]!.split(', ');
    rewriteSource = m[2]!.replace(/…$/, '');
    assert.ok(COOKING.some((p) => p.startsWith(rewriteSource)), `the nearest past prompt is a cooking one: "${rewriteSource}"`);
    assert.ok(!TRAVEL.some((p) => p.startsWith(rewriteSource)));
    await note.locator('.monaco-button', { hasText: 'Accept' }).click();
    await waitFor('rewrite applied', async () => {
      const text = await wb.editorText();
      return !text.startsWith(COOKING_PARAGRAPH) && text.includes(TRAVEL_PARAGRAPH) ? text : undefined;
    }, { timeoutMs: 30_000 });
    await wb.screenshot('07-rewrite-accepted');
  });

  async function profileRows(): Promise<{ prompt: string; attributes: string[] }[]> {
    const frame = await wb.webviewFrame('EXACT Attribute Profile', { timeoutMs: 60_000 });
    await frame.locator('table.entries tbody tr').first().waitFor({ state: 'visible', timeout: 60_000 });
    const rows = frame.locator('table.entries tbody tr');
    const out: { prompt: string; attributes: string[] }[] = [];
    for (let i = 0; i < (await rows.count()); i++) {
      const row = rows.nth(i);
      out.push({ prompt: (await row.locator('td').first().innerText()).trim(), attributes: (await row.locator('.tag').allTextContents()).map((t) => t.trim()) });
    }
    return out;
  }

  it('the profile shows what was learned, including the attributes the rewrite used', async () => {
    await wb.runCommand('EXACT: Show Attribute Profile');
    const rows = await profileRows();
    await wb.screenshot('08-profile');
    assert.equal(rows.length, 6, JSON.stringify(rows));
    const source = rows.find((r) => r.prompt.startsWith(rewriteSource));
    assert.ok(source, `profile lists the prompt the rewrite came from: ${rewriteSource}`);
    assert.deepEqual(source.attributes.map((a) => a.trim()), rewriteAttributes, 'the injected attributes are that cooking prompt’s learned attributes');
    const frame = await wb.webviewFrame('EXACT Attribute Profile');
    const chart = await frame.locator('#frequencies .chart-row').count();
    assert.ok(chart > 0, 'the attribute chart has bars');
    // The packaged extension carries the Vulkan build: without a working GPU driver (this project's machines)
    // llama.cpp falls back to the CPU and the profile says why; with one, it names the GPU backend.
    const scoring = (await frame.locator('p.scoring').innerText()).trim();
    assert.match(scoring, /^Scoring in-process with llama\.cpp on (the CPU\. CPU: .*Vulkan.*|the GPU \((vulkan|cuda|metal)\)\. .+)$/u, scoring);
  });

  it('after reloading the window the learned data is still there', async () => {
    await wb.reloadWindow();
    await waitFor('status bar after reload', async () => (await wb.statusBarTexts()).find((t) => /EXACT: 6 prompts learned/.test(t)), { timeoutMs: 90_000 });
    await wb.runCommand('EXACT: Show Attribute Profile');
    const rows = await profileRows();
    await wb.screenshot('09-after-reload');
    assert.equal(rows.length, 6);
  });

  it('the browser reported no Content-Security-Policy violation in the workbench or the webviews', () => {
    assert.deepEqual(wb.cspViolations, []);
  });
});
