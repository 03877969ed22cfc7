/**
 * The rest of what a user touches, in a real VS Code in a real browser (same set-up as
 * exact.e2e.test.ts): thumbs-down and editing a draft before choosing it, skip, stop, insert,
 * Personalized Completion, the error a user sees when Ollama is down (and its buttons),
 * deleting a learned prompt from the profile, inline completions once the setting is on, and the
 * profile's data management (edit an entry, custom attributes, export, reset, import).
 *
 * Screenshots: test/e2e/screenshots/more-*.png.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Frame } from 'playwright-core';
import { waitFor, type Workbench } from './harness';
import { skipUnlessReady, startExactSession, type ExactSession } from './exactSession';

const PARAGRAPH = 'Tonight I am cooking rice and beans for four people.';
const EDIT_MARK = 'Edited by hand before choosing.';

describe('EXACT interactions in a real VS Code', { skip: skipUnlessReady, timeout: 20 * 60_000 }, () => {
  let exact: ExactSession;
  let wb: Workbench;
  let notes: string;

  before(async () => {
    exact = await startExactSession({ screenshotPrefix: 'more', files: { 'notes.md': `${PARAGRAPH}\n` } });
    wb = exact.wb;
    notes = path.join(exact.workspace, 'notes.md');
  });

  after(async () => {
    await exact?.close();
  });

  /** Generates drafts for `prompt` and waits until both are written; returns their texts. */
  async function generate(prompt: string): Promise<{ frame: Frame; a: string; b: string }> {
    const frame = await exact.drafts();
    await frame.locator('#prompt textarea').fill(prompt);
    await frame.locator('#generate').click();
    await waitFor(`drafts for "${prompt}"`, async () => /Which draft is better/.test(await exact.statusText(frame)) || undefined, { timeoutMs: 180_000 });
    return { frame, a: (await frame.locator('#text-A').innerText()).trim(), b: (await frame.locator('#text-B').innerText()).trim() };
  }

  it('thumbs-down on a draft prefers the other one, saved as the user edited it', async () => {
    await wb.runCommand('EXACT: Open Drafts Panel');
    const { frame, a, b } = await generate('How do I cook rice so it is fluffy?');
    await frame.locator('#edit-button-A').click();
    const box = frame.locator('#edit-A textarea');
    await box.waitFor({ state: 'visible' });
    const edited = `${a} ${EDIT_MARK}`;
    await box.fill(edited);
    await wb.screenshot('01-editing-draft-A');
    await frame.locator('#down-B').click();
    await waitFor('choice saved', async () => /^Saved\./.test(await exact.statusText(frame)) || undefined, { timeoutMs: 30_000 });
    await wb.screenshot('02-thumbs-down-saved');
    const pairs = exact.recordedPairs();
    assert.equal(pairs.length, 1, JSON.stringify(pairs));
    assert.equal(pairs[0]!.prompt, 'How do I cook rice so it is fluffy?');
    assert.equal(pairs[0]!.chosen.trim(), edited, 'the edited draft A is the preferred response');
    assert.equal(pairs[0]!.rejected.trim(), b, 'the thumbed-down draft B is the rejected one');
  });

  it('skip records nothing, and stop ends generation but keeps the drafts choosable', async () => {
    const { frame } = await generate('How long do beans need to soak?');
    await frame.locator('#skip').click();
    await waitFor('skipped', async () => /^Skipped\. Nothing was recorded\./.test(await exact.statusText(frame)) || undefined);
    assert.equal(exact.recordedPairs().length, 1, 'skip wrote no pair');

    // A cold model load: the first byte of every answer comes 5 s late, time enough to press Stop.
    exact.ollama.slowFirstTokenMs = 5_000;
    try {
      await frame.locator('#prompt textarea').fill('What goes well with rice and beans?');
      await frame.locator('#generate').click();
      await waitFor('drafts started', async () => /^Generating/.test(await exact.statusText(frame)) || undefined, { timeoutMs: 30_000 });
      await frame.locator('#stop').click();
      await waitFor('stopped', async () => /^Stopped\./.test(await exact.statusText(frame)) || undefined, { timeoutMs: 30_000 });
      await wb.screenshot('03-stopped');
      assert.equal(await frame.locator('#generate').getAttribute('disabled'), null, 'Generate is enabled again');
    } finally {
      exact.ollama.slowFirstTokenMs = 0;
    }
    assert.equal(exact.recordedPairs().length, 1, 'stopping wrote no pair');
  });

  it('insert puts a draft into the editor at the cursor', async () => {
    await wb.openFile(notes);
    await wb.page.keyboard.press('Control+End');
    const { frame, a } = await generate('Write one sentence about dinner.');
    await frame.locator('#insert-A').click();
    const text = await waitFor('the draft in the editor', async () => {
      const t = await wb.editorText();
      return t.includes(a.slice(0, 40)) ? t : undefined;
    }, { timeoutMs: 30_000 });
    assert.ok(text.startsWith(PARAGRAPH), 'the rest of the file is unchanged');
    await wb.screenshot('04-inserted');
    await frame.locator('#skip').click();
  });

  it('Personalized Completion continues the text at the cursor', async () => {
    await wb.openFile(notes);
    await wb.page.keyboard.press('Control+Z'); // back to the paragraph alone
    const before = await waitFor('the insert undone', async () => {
      const t = await wb.editorText();
      return t.trim() === PARAGRAPH ? t : undefined;
    }, { timeoutMs: 10_000 });
    await wb.page.keyboard.press('Control+End');
    await wb.runCommand('EXACT: Personalized Completion');
    await wb.waitForStatusBarItem(/EXACT: continued with/, { timeoutMs: 120_000 });
    const after = await wb.editorText();
    await wb.screenshot('05-completion');
    assert.ok(after.startsWith(before.trimEnd()), 'the text before the cursor is kept');
    assert.ok(after.trim().length > before.trim().length, `something was written after the cursor: ${JSON.stringify(after)}`);
  });

  it('with Ollama down, a rewrite says what to do and its buttons lead there', async () => {
    // Let the background learning of the first choice finish first, so its messages cannot mix in.
    await wb.waitForStatusBarItem(/EXACT: 1 prompt learned/, { timeoutMs: 5 * 60_000 });
    await wb.clearNotifications();
    await exact.ollama.setDown('refuse');
    try {
      await wb.openFile(notes);
      await wb.selectAllInEditor();
      await wb.runCommand('EXACT: Personalized Rewrite');
      await wb.page.locator('.quick-input-widget').waitFor({ state: 'visible' });
      await wb.page.keyboard.press('Enter');
      const note = await wb.waitForNotification(/Ollama is not reachable/, { timeoutMs: 60_000 });
      const message = await note.locator('.notification-list-item-message').innerText();
      assert.match(message, /ollama serve/, 'it says how to start Ollama');
      const buttons = (await note.locator('.monaco-button').allInnerTexts()).map((t) => t.trim());
      assert.deepEqual(buttons, ['Retry Check', 'Open Settings', 'Setup Guide']);
      await wb.screenshot('06-ollama-down');
      await note.locator('.monaco-button', { hasText: 'Open Settings' }).click();
      await wb.step('settings-opened', async () => {
        // The Settings editor, filtered to EXACT's settings, with the host setting the message names.
        await wb.page.getByText(/\d+ Settings? Found/).first().waitFor({ state: 'visible', timeout: 30_000 });
        await wb.page.locator('.setting-item-category', { hasText: 'Ollama' }).first().waitFor({ state: 'visible', timeout: 30_000 });
        const labels = (await wb.page.locator('.setting-item-title').allInnerTexts()).map((t) => t.replace(/\s+/g, ' ').trim());
        assert.ok(labels.some((l) => /Exact › Ollama: ?Host/.test(l)), `settings shown: ${JSON.stringify(labels.slice(0, 5))}`);
        assert.ok(labels.every((l) => l.startsWith('Exact')), 'only EXACT settings are listed');
        await wb.screenshot('07-settings');
        assert.ok(await wb.modalEditor.isVisible(), 'Settings is open as a modal editor (closeModalEditor relies on its element)');
        await wb.closeModalEditor();
      });
    } finally {
      await exact.ollama.setDown(false);
    }
  });

  it('the profile deletes a learned prompt after confirmation', async () => {
    await wb.runCommand('EXACT: Show Attribute Profile');
    const frame = await wb.webviewFrame('EXACT Attribute Profile', { timeoutMs: 60_000 });
    const rows = frame.locator('table.entries tbody tr');
    await rows.first().waitFor({ state: 'visible', timeout: 60_000 });
    assert.equal(await rows.count(), 1);
    assert.match(await rows.first().innerText(), /How do I cook rice so it is fluffy\?/);
    await rows.first().locator('vscode-button[title^="Delete “How do I cook rice"]').click();
    const dialog = wb.page.locator('.monaco-dialog-box');
    await dialog.waitFor({ state: 'visible', timeout: 30_000 });
    await wb.screenshot('08-delete-confirm');
    await dialog.locator('.monaco-button', { hasText: 'Delete' }).click();
    await waitFor('the entry gone from the profile', async () => ((await frame.locator('table.entries tbody tr').count()) === 0 ? true : undefined), { timeoutMs: 30_000 });
    await wb.waitForStatusBarItem(/EXACT: 0 prompts learned/, { timeoutMs: 30_000 });
    await wb.screenshot('09-deleted');
  });

  it('inline completions appear while typing once the setting is turned on, and Tab accepts one', async () => {
    // As a user would: tick the setting in the Settings editor.
    await wb.step('enable-inline-setting', async () => {
      await wb.runCommand('Preferences: Open Settings (UI)');
      await wb.page.getByText(/\d+ Settings? Found|Commonly Used/).first().waitFor({ state: 'visible', timeout: 30_000 });
      await wb.page.keyboard.type('exact.inlineCompletion.enabled');
      const checkbox = wb.page.locator('.setting-item-bool', { hasText: 'Inline Completion' }).locator('.setting-value-checkbox').first();
      await checkbox.waitFor({ state: 'visible', timeout: 30_000 });
      await checkbox.click();
      await waitFor('the setting ticked', async () => ((await checkbox.getAttribute('aria-checked')) === 'true' ? true : undefined), { timeoutMs: 10_000 });
      await wb.screenshot('10-inline-setting');
      assert.ok(await wb.modalEditor.isVisible(), 'Settings is open as a modal editor (closeModalEditor relies on its element)');
      // The Settings editor writes the change a moment later (closing it at once can lose it): wait
      // until the extension says the change took effect, then close it.
      await waitFor('the extension to turn inline completions on', () => exact.extensionLog().includes('Inline completions on.') || undefined, { timeoutMs: 30_000, intervalMs: 250 });
      await wb.closeModalEditor();
    });
    await wb.openFile(notes);
    await wb.page.keyboard.press('Control+End');
    const before = await wb.editorText();
    await wb.page.keyboard.press('Control+End');
    const ghost = wb.page.locator('.monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text').first();
    // The fixture model sometimes answers this out-of-distribution request with nothing (then no
    // suggestion is right); each pause in typing is a new request, so type on, a few times at most.
    let typed = '';
    await wb.step('ghost-text', async () => {
      for (const words of [' The beans', ' soak overnight', ' and then']) {
        const generates = exact.ollama.requestsTo('/api/generate').length;
        await wb.page.keyboard.type(words, { delay: 30 });
        typed += words;
        const shown = await ghost.waitFor({ state: 'visible', timeout: 20_000 }).then(() => true, () => false);
        assert.ok(exact.ollama.requestsTo('/api/generate').length > generates, `typing asked the model for a suggestion; extension log:\n${exact.extensionLog().slice(-3000)}`);
        if (shown) return;
      }
      throw new Error(`no inline suggestion after three pauses in typing; extension log:\n${exact.extensionLog().slice(-3000)}`);
    });
    // Monaco renders the ghost text's spaces as no-break spaces.
    const suggested = (await ghost.innerText()).replace(/\u00a0/gu, ' ').trim();
    await wb.screenshot('11-inline-suggestion');
    await wb.page.keyboard.press('Tab');
    const after = await waitFor('the suggestion accepted', async () => {
      const t = await wb.editorText();
      return t.length > before.length + typed.length ? t : undefined;
    }, { timeoutMs: 10_000 });
    assert.ok(after.startsWith(`${before}${typed}`), `typed text kept: ${JSON.stringify(after)}`);
    const flat = (t: string): string => t.replace(/\s+/gu, ' ');
    if (suggested.length > 0) assert.ok(flat(after).includes(flat(suggested.slice(0, 10))), `accepted text ${JSON.stringify(suggested)} is in the editor: ${JSON.stringify(after)}`);
  });

  it('the profile edits an entry and custom attributes, and exports, resets and imports everything', async () => {
    await wb.runCommand('EXACT: Open Drafts Panel');
    const { frame } = await generate('How do I keep pasta from sticking?');
    await frame.locator('#up-A').click();
    await waitFor('choice saved', async () => /^Saved\./.test(await exact.statusText(frame)) || undefined, { timeoutMs: 30_000 });
    await wb.waitForStatusBarItem(/EXACT: 1 prompt learned/, { timeoutMs: 5 * 60_000 });

    await wb.runCommand('EXACT: Show Attribute Profile');
    const profile = await wb.webviewFrame('EXACT Attribute Profile', { timeoutMs: 60_000 });
    const row = profile.locator('table.entries tbody tr').first();
    await waitFor('the learned pasta prompt listed', async () => /pasta/.test(await row.innerText().catch(() => '')) || undefined, { timeoutMs: 60_000 });
    assert.match(await profile.locator('body').innerText(), /\b1 prompt learned\b/, 'the header counts one prompt in the singular');

    await wb.step('edit-entry', async () => {
      await row.locator('vscode-button[title^="Edit the attributes of “How do I keep pasta"]').click();
      const field = profile.locator('vscode-text-field[id^="edit-"] input');
      await field.waitFor({ state: 'visible', timeout: 10_000 });
      await field.fill('Concise, Formal');
      await row.locator('vscode-button', { hasText: 'Save' }).click();
      await waitFor('the edit shown', async () => {
        const text = await row.innerText();
        return /Concise/i.test(text) && /Formal/i.test(text) && /edited by you/.test(text) ? true : undefined;
      }, { timeoutMs: 30_000 });
    });
    await wb.step('add-custom-attribute', async () => {
      await profile.locator('#custom-name input').fill('Playful');
      await profile.locator('#add-custom').click();
      await profile.locator('span.custom', { hasText: 'Playful' }).waitFor({ state: 'visible', timeout: 30_000 });
      await waitFor('the library grown to 43', async () => ((await profile.locator('#custom details summary').innerText()).includes('All 43 attributes') ? true : undefined), { timeoutMs: 10_000 });
    });
    await wb.screenshot('12-profile-edited');

    // Export to a file in the workspace.
    const exported = path.join(exact.workspace, 'exact-preferences.json');
    await profile.locator('vscode-button', { hasText: 'Export…' }).click();
    await wb.answerFileDialog(exported);
    await wb.waitForNotification(/Exported 1 choice to/, { timeoutMs: 30_000 });
    const data = JSON.parse(readFileSync(exported, 'utf8')) as { pairs: Array<{ prompt: string }> };
    assert.deepEqual(data.pairs.map((p) => p.prompt), ['How do I keep pasta from sticking?'], 'the export holds the one remaining choice (the deleted one is gone)');

    // Reset, after the modal confirmation.
    await profile.locator('vscode-button', { hasText: 'Reset…' }).click();
    const dialog = wb.page.locator('.monaco-dialog-box');
    await dialog.waitFor({ state: 'visible', timeout: 30_000 });
    assert.match(await dialog.innerText(), /Delete the 1 recorded choice and everything/);
    await dialog.locator('.monaco-button', { hasText: 'Delete Everything' }).click();
    await wb.waitForStatusBarItem(/EXACT: 0 prompts learned/, { timeoutMs: 30_000 });
    await waitFor('the profile emptied', async () => ((await profile.locator('table.entries').count()) === 0 ? true : undefined), { timeoutMs: 30_000 });
    assert.equal(exact.recordedPairs().length, 0, 'the log is empty after the reset');

    // Import brings the choice back with the hand-edited attributes.
    await profile.locator('vscode-button', { hasText: 'Import…' }).click();
    await wb.answerFileDialog(exported);
    await wb.waitForNotification(/Imported 1 new choice\./, { timeoutMs: 30_000 });
    await wb.waitForStatusBarItem(/EXACT: 1 prompt learned/, { timeoutMs: 5 * 60_000 });
    await waitFor('the imported entry with its edit', async () => {
      const text = await profile.locator('table.entries tbody tr').first().innerText().catch(() => '');
      return /pasta/.test(text) && /Concise/i.test(text) && /Formal/i.test(text) && /edited by you/.test(text) ? true : undefined;
    }, { timeoutMs: 60_000 });
    assert.deepEqual(exact.recordedPairs().map((p) => p.prompt), ['How do I keep pasta from sticking?']);
    assert.doesNotMatch(await profile.locator('body').innerText(), /Added "Playful"/, 'the panel no longer shows an earlier action\'s message');
    await wb.screenshot('13-imported');
    assert.ok(existsSync(exported));
  });

  it('the browser reported no Content-Security-Policy violation in the workbench or the webviews', () => {
    assert.deepEqual(wb.cspViolations, []);
  });
});
