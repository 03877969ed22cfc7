/**
 * Nothing the writer typed or was shown gets lost, in a real VS Code in a real browser (same
 * set-up as exact.e2e.test.ts): drafts and an edit survive switching to the Explorer and a window
 * reload, the profile keeps what is being typed while learning finishes and across tab switches,
 * a failed Generate leaves nothing that looks as if it still ran, keyboard focus stays put after
 * a choice, per-row buttons name their prompt, and no webview breaks the Content-Security-Policy.
 *
 * Screenshots: test/e2e/screenshots/states-*.png (the numbered ones are committed).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Frame } from 'playwright-core';
import { waitFor, type Workbench } from './harness';
import { skipUnlessReady, startExactSession, type ExactSession } from './exactSession';

/** The page globals used inside frame.evaluate (this project's Node-only tsconfig has no DOM library). */
interface FrameGlobals {
  document: { activeElement: { id: string } | null; body: { setAttribute(name: string, value: string): void } };
}
/** The id of the element that has the keyboard focus inside a webview. */
const focusedId = (frame: Frame): Promise<string | undefined> => frame.evaluate(() => (globalThis as unknown as FrameGlobals).document.activeElement?.id);

const FIRST_PROMPT = 'How do I cook rice so it is fluffy?';
const SECOND_PROMPT = 'What is a quick weeknight soup?';
const EDIT_MARK = 'Edited by hand, kept while hidden.';

describe('EXACT keeps the writer’s state in a real VS Code', { skip: skipUnlessReady, timeout: 20 * 60_000 }, () => {
  let exact: ExactSession;
  let wb: Workbench;

  before(async () => {
    exact = await startExactSession({ screenshotPrefix: 'states', files: { 'notes.md': 'Dinner plans.\n' } });
    wb = exact.wb;
  });

  after(async () => {
    await exact?.close();
  });

  async function generate(frame: Frame, prompt: string): Promise<{ a: string; b: string }> {
    await frame.locator('#prompt textarea').fill(prompt);
    await frame.locator('#generate').click();
    await waitFor(`drafts for "${prompt}"`, async () => /Which draft is better/.test(await exact.statusText(frame)) || undefined, { timeoutMs: 180_000 });
    return { a: (await frame.locator('#text-A').innerText()).trim(), b: (await frame.locator('#text-B').innerText()).trim() };
  }

  /** The drafts view after it was shown again: the same prompt, drafts and edit. */
  async function assertDraftsKept(frame: Frame, expected: { b: string; edited: string }): Promise<void> {
    await frame.locator('#edit-A textarea').waitFor({ state: 'visible', timeout: 30_000 });
    assert.equal(await frame.locator('#prompt textarea').inputValue(), FIRST_PROMPT, 'the prompt is kept');
    assert.equal(await frame.locator('#edit-A textarea').inputValue(), expected.edited, 'the edit in progress is kept');
    assert.equal((await frame.locator('#text-B').innerText()).trim(), expected.b, 'draft B is kept');
    assert.equal(await frame.locator('#up-A').getAttribute('disabled'), null, 'the drafts can still be chosen');
    assert.match(await exact.statusText(frame), /Which draft is better/);
  }

  let edited = '';

  it('drafts and an edit in progress survive switching to the Explorer and back, and a window reload; a keyboard choice keeps focus', async () => {
    await wb.runCommand('EXACT: Open Drafts Panel');
    let frame = await exact.drafts();
    const { a, b } = await generate(frame, FIRST_PROMPT);
    await frame.locator('#edit-button-A').click();
    edited = `${a} ${EDIT_MARK}`;
    await frame.locator('#edit-A textarea').fill(edited);

    await wb.step('explorer-and-back', async () => {
      await wb.runCommand('View: Show Explorer');
      // Hidden, the view's page is torn down (no retained context): what comes back is restored.
      await waitFor('the drafts page torn down', () => frame.isDetached() || undefined, { timeoutMs: 30_000 });
      await wb.runCommand('EXACT: Open Drafts Panel');
      frame = await exact.drafts();
      await assertDraftsKept(frame, { b, edited });
      await wb.screenshot('01-drafts-kept-after-explorer');
    });

    await wb.step('reload', async () => {
      await wb.reloadWindow();
      await wb.waitForStatusBarItem(/EXACT:/, { timeoutMs: 90_000 });
      await wb.runCommand('EXACT: Open Drafts Panel');
      frame = await exact.drafts();
      await assertDraftsKept(frame, { b, edited });
      await wb.screenshot('02-drafts-kept-after-reload');
    });

    await wb.step('keyboard-choice', async () => {
      await frame.locator('#up-A').focus();
      await wb.page.keyboard.press('Enter');
      await waitFor('choice saved', async () => /^Saved\./.test(await exact.statusText(frame)) || undefined, { timeoutMs: 30_000 });
      assert.equal(await focusedId(frame), 'prompt', 'focus moved to the prompt box for the next prompt, not to the page');
    });
    const pairs = exact.recordedPairs();
    assert.equal(pairs.length, 1, JSON.stringify(pairs));
    assert.equal(pairs[0]!.prompt, FIRST_PROMPT);
    assert.equal(pairs[0]!.chosen.trim(), edited, 'the choice made after the reload records the edited draft');
    assert.equal(pairs[0]!.rejected.trim(), b);
  });

  it('the profile keeps a row edit and a new attribute being typed while learning finishes and across tab switches; row buttons name their prompt', async () => {
    await wb.waitForStatusBarItem(/EXACT: 1 prompt learned/, { timeoutMs: 5 * 60_000 });
    const drafts = await exact.drafts();
    await generate(drafts, SECOND_PROMPT);

    await wb.runCommand('EXACT: Show Attribute Profile');
    let profile = await wb.webviewFrame('EXACT Attribute Profile', { timeoutMs: 60_000 });
    const row = profile.locator('table.entries tbody tr[data-pair]').first();
    await waitFor('the learned rice prompt listed', async () => /fluffy/.test(await row.innerText().catch(() => '')) || undefined, { timeoutMs: 60_000 });

    await wb.step('accessible-names', async () => {
      await profile.getByRole('button', { name: `Edit the attributes of “${FIRST_PROMPT}”` }).waitFor({ state: 'visible' });
      await profile.getByRole('button', { name: `Delete “${FIRST_PROMPT}” and what was learned from it` }).waitFor({ state: 'visible' });
    });

    await profile.getByRole('button', { name: `Edit the attributes of “${FIRST_PROMPT}”` }).click();
    const rowField = profile.locator('vscode-text-field[id^="edit-"] input');
    await rowField.waitFor({ state: 'visible', timeout: 10_000 });
    const rowText = `${await rowField.inputValue()}, Vividd`;
    await rowField.fill(rowText);
    await profile.locator('#custom-name input').click();
    await wb.page.keyboard.type('Playf');

    await wb.step('learning-finishes-while-typing', async () => {
      // A second choice, made after the typing, and clicked without moving the keyboard focus (as if
      // learning had been under way): learning from it finishes and the profile redraws.
      await drafts.locator('#up-B').dispatchEvent('click');
      await waitFor('choice saved', async () => /^Saved\./.test(await exact.statusText(drafts)) || undefined, { timeoutMs: 30_000 });
      await wb.waitForStatusBarItem(/EXACT: 2 prompts learned/, { timeoutMs: 5 * 60_000 });
      await waitFor('the profile redrawn with the second prompt', async () => ((await profile.locator('table.entries tbody tr[data-pair]').count()) === 2 ? true : undefined), { timeoutMs: 60_000 });
      assert.equal(await profile.locator('vscode-text-field[id^="edit-"] input').inputValue(), rowText, 'the row edit kept its text');
      assert.equal(await profile.locator('#custom-name input').inputValue(), 'Playf', 'the new attribute kept its text');
      assert.equal(await focusedId(profile), 'custom-name', 'the field being typed in keeps the focus');
      await wb.page.keyboard.type('ul');
      assert.equal(await profile.locator('#custom-name input').inputValue(), 'Playful', 'typing goes on where it was');
      await wb.screenshot('03-profile-typing-kept');
    });

    await wb.step('tab-switch', async () => {
      await wb.openFile('notes.md');
      await waitFor('the profile page torn down while hidden', () => profile.isDetached() || undefined, { timeoutMs: 30_000 });
      await wb.runCommand('EXACT: Show Attribute Profile');
      profile = await wb.webviewFrame('EXACT Attribute Profile', { timeoutMs: 60_000 });
      await profile.locator('#custom-name input').waitFor({ state: 'visible', timeout: 60_000 });
      await waitFor('the row edit back', async () => ((await profile.locator('vscode-text-field[id^="edit-"] input').count()) === 1 ? true : undefined), { timeoutMs: 30_000 });
      assert.equal(await profile.locator('vscode-text-field[id^="edit-"] input').inputValue(), rowText);
      assert.equal(await profile.locator('#custom-name input').inputValue(), 'Playful');
    });

    await wb.step('message-next-to-the-row', async () => {
      await profile.getByRole('button', { name: `Save the attributes of “${FIRST_PROMPT}”` }).click();
      const message = profile.locator('tr.row-notice');
      await message.waitFor({ state: 'visible', timeout: 30_000 });
      assert.match(await message.innerText(), /Unknown attribute: Vividd/);
      assert.equal(await profile.locator('vscode-text-field[id^="edit-"] input').inputValue(), rowText, 'a failed save leaves the edit open as typed');
      const help = await profile.locator('#entries-help').innerText();
      assert.match(help, /Gain \(in nats.*2\.7 times as likely/, 'gain is explained in plain words, with its unit');
      assert.doesNotMatch(help, /log-likelihood|greedy/, 'research terms stay under Details until opened');
      assert.match(await profile.locator('table.entries th', { hasText: 'Gain' }).innerText(), /Gain \(nats\)/);
      await wb.screenshot('04-profile-message-at-row');
    });
  });

  it('a failed Generate clears the drafts, disables Skip and offers Try again; its message shows code, not backticks', async () => {
    const frame = await exact.drafts();
    await exact.ollama.setDown('refuse');
    try {
      await frame.locator('#prompt textarea').fill('Why does bread go stale?');
      await frame.locator('#generate').click();
      await waitFor('the failure', async () => /Could not generate drafts/.test(await exact.statusText(frame)) || undefined, { timeoutMs: 60_000 });
      const text = await exact.statusText(frame);
      assert.match(text, /Ollama is not reachable/);
      assert.doesNotMatch(text, /`/, 'no raw backticks');
      assert.equal(await frame.locator('#status code', { hasText: 'ollama serve' }).count(), 1, 'the command is shown as code');
      assert.equal(await frame.locator('.draft').count(), 0, 'no draft cards are left behind');
      assert.notEqual(await frame.locator('#skip').getAttribute('disabled'), null, 'Skip is disabled');
      assert.equal(await frame.locator('#generate').getAttribute('disabled'), null, 'Generate is enabled');
      await frame.locator('#retry').waitFor({ state: 'visible' });
      await wb.screenshot('05-generate-failed');
    } finally {
      await exact.ollama.setDown(false);
    }
    await frame.locator('#retry').click();
    await waitFor('drafts after trying again', async () => /Which draft is better/.test(await exact.statusText(frame)) || undefined, { timeoutMs: 180_000 });
    assert.equal(await frame.locator('.draft').count(), 2);
  });

  it('the side-by-side comparison shows both drafts next to each other with Draft B’s buttons in view at 1440x900', async () => {
    assert.deepEqual(wb.page.viewportSize(), { width: 1440, height: 900 });
    await wb.runCommand('EXACT: Compare Drafts Side by Side');
    const panel = await wb.webviewFrame('EXACT Drafts Side by Side', { timeoutMs: 60_000 });
    await panel.locator('#prompt').waitFor({ state: 'visible', timeout: 60_000 });
    await generate(panel, 'Should I salt pasta water?');
    const [a, b, upB] = await Promise.all(['#draft-A', '#draft-B', '#up-B'].map((s) => panel.locator(s).boundingBox()));
    assert.ok(a && b && upB, 'both drafts and Draft B’s thumbs-up are laid out');
    assert.ok(Math.abs(a.y - b.y) < 2 && b.x >= a.x + a.width - 1, `the drafts are side by side: A ${JSON.stringify(a)}, B ${JSON.stringify(b)}`);
    assert.ok(upB.y >= 0 && upB.y + upB.height <= 900, `Draft B’s thumbs-up is in view without scrolling: ${JSON.stringify(upB)}`);
    await wb.screenshot('06-side-by-side');
    await panel.locator('#up-B').click();
    await waitFor('choice saved', async () => /^Saved\./.test(await exact.statusText(panel)) || undefined, { timeoutMs: 30_000 });
    assert.equal(exact.recordedPairs().at(-1)?.prompt, 'Should I salt pasta water?');
  });

  it('the browser reported no Content-Security-Policy violation, and would have reported one', async () => {
    assert.deepEqual(wb.cspViolations, []);
    // The control: an inline style in EXACT's webview is refused and reaches the console we read.
    const frame = await exact.drafts();
    await frame.evaluate(() => (globalThis as unknown as FrameGlobals).document.body.setAttribute('style', 'outline: 1px solid red'));
    await waitFor('the violation reported', () => (wb.cspViolations.length > 0 ? true : undefined), { timeoutMs: 10_000 });
  });
});
