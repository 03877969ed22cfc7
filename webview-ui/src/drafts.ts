import type { DraftEdit, DraftInfo, DraftSlot, DraftsSnapshot, HostToWebview, QueueState, WebviewToHost } from '../../src/shared/protocol';
import { countOf } from '../../src/shared/plural';
import { button, el, focusElement, keepFocus, onInput, richText, setDisabled, spinner, tag, textArea } from './components';

declare function acquireVsCodeApi(): { postMessage(msg: WebviewToHost): void; setState(s: SavedState): void; getState(): SavedState | undefined };
const vscode = acquireVsCodeApi();
const post = (m: WebviewToHost): void => vscode.postMessage(m);

interface DraftState {
  info: DraftInfo;
  text: string;
  done: boolean;
  /** The text in the draft's edit box while it is being edited. */
  edit: string | undefined;
  /** Generation ran into the token limit, so the text may end mid-sentence. */
  cut: boolean;
  /** `text` is the user's edit (an edit box that was closed), not what was generated. */
  edited?: boolean;
}

interface StatusLine {
  text: string;
  level: 'info' | 'warning' | 'error';
  busy: boolean;
  /** Offer "Try again" (generation failed). */
  retry: boolean;
}

/**
 * Everything the user sees, kept with VS Code's webview state: the view is torn down whenever it
 * is hidden and comes back from this on show and after a window reload.
 */
interface SavedState {
  prompt: string;
  requestId: string | undefined;
  generating: boolean;
  decided: boolean;
  /** The draft the user preferred, once decided (undefined after Skip). */
  chosen: DraftSlot | undefined;
  drafts: DraftState[];
  status: StatusLine;
}

const saved = vscode.getState();
let requestId = saved?.requestId;
let generating = saved?.generating ?? false;
let decided = saved?.decided ?? false;
let chosen = saved?.chosen;
let trusted = true;
let statusLine: StatusLine = saved?.status ?? { text: '', level: 'info', busy: false, retry: false };
const drafts = new Map<DraftSlot, DraftState>((saved?.drafts ?? []).map((d) => [d.info.slot, d]));
let lastEdits = '';

function save(): void {
  vscode.setState({ prompt: promptBox.value, requestId, generating, decided, chosen, drafts: [...drafts.values()], status: statusLine });
  // The host keeps the edits as well: the page's own state may not be written out before a window reload.
  if (requestId !== undefined && !decided) {
    const edits: Partial<Record<DraftSlot, DraftEdit>> = {};
    for (const [slot, d] of drafts) if (d.edit !== undefined || d.edited === true) edits[slot] = { text: d.edit ?? d.text, open: d.edit !== undefined };
    const key = JSON.stringify(edits);
    if (key !== lastEdits) {
      lastEdits = key;
      post({ type: 'keepEdits', requestId, edits });
    }
  }
}

const root = document.getElementById('root')!;
const promptBox = onInput(textArea({ placeholder: 'What should the drafts be about? (prefilled from your selection)', rows: 4, id: 'prompt', label: 'Prompt', value: saved?.prompt ?? '' }), save);
const generateButton = button('Generate drafts', () => generate(), { icon: 'sparkle', id: 'generate' });
const stopButton = button('Stop', () => post({ type: 'stop' }), { icon: 'debug-stop', appearance: 'secondary', id: 'stop', disabled: true });
const skipButton = button('Skip', () => skip(), { icon: 'debug-step-over', appearance: 'secondary', id: 'skip', disabled: true });
const status = el('div', { class: 'status', attrs: { id: 'status', role: 'status', 'aria-live': 'polite' } });
const columns = el('div', { class: 'drafts', attrs: { id: 'drafts' } });
const queueLine = el('div', { class: 'queue', attrs: { id: 'queue' } });
const profileLink = button('Profile', () => post({ type: 'openProfile' }), { icon: 'person', appearance: 'secondary', title: 'Show attribute profile' });
const sideBySideLink = button('Side by side', () => post({ type: 'openSideBySide' }), { icon: 'split-horizontal', appearance: 'secondary', title: 'Compare the drafts side by side in the editor area', id: 'side-by-side' });

root.append(
  promptBox,
  el('div', { class: 'row' }, generateButton, stopButton, skipButton),
  status,
  columns,
  el('div', { class: 'footer' }, queueLine, el('div', { class: 'row' }, sideBySideLink, profileLink)),
);

function setStatus(text: string, level: StatusLine['level'] = 'info', busy = false, retry = false): void {
  statusLine = { text, level, busy, retry };
  showStatus();
  save();
}

function showStatus(): void {
  const { text, level, busy, retry } = statusLine;
  status.className = `status ${level}`;
  status.replaceChildren(
    ...(busy ? [spinner()] : []),
    el('span', {}, ...richText(text)),
    retry ? button('Try again', () => generate(), { icon: 'refresh', appearance: 'secondary', id: 'retry' }) : '',
  );
}

function generate(): void {
  const prompt = promptBox.value.trim();
  if (prompt.length === 0) {
    setStatus('Write a prompt first (or select some text in the editor and open this view again).', 'warning');
    return;
  }
  if (!trusted) {
    setStatus('Generation is disabled in untrusted workspaces. Trust this workspace to use EXACT.', 'warning');
    return;
  }
  post({ type: 'generate', prompt });
  generating = true;
  decided = false;
  chosen = undefined;
  requestId = undefined;
  drafts.clear();
  updateButtons();
  setStatus('Retrieving your attributes and generating two drafts…', 'info', true);
}

function skip(): void {
  if (requestId !== undefined) post({ type: 'skip', requestId });
  decided = true;
  updateButtons();
  setStatus('Skipped. Nothing was recorded.');
  focusElement(promptBox);
}

function choose(slot: DraftSlot, thumbsUp: boolean): void {
  if (requestId === undefined || decided) return;
  const preferred: DraftSlot = thumbsUp ? slot : slot === 'A' ? 'B' : 'A';
  const rejected: DraftSlot = preferred === 'A' ? 'B' : 'A';
  const p = drafts.get(preferred);
  const r = drafts.get(rejected);
  if (!p || !r) return;
  const preferredText = currentText(preferred);
  if (preferredText.trim().length === 0 || r.text.trim().length === 0) {
    setStatus('Both drafts need text before you choose.', 'warning');
    return;
  }
  decided = true;
  chosen = preferred;
  updateButtons();
  setStatus(`Saving your choice (Draft ${preferred})…`, 'info', true);
  post({ type: 'choose', requestId, preferred, preferredText, rejectedText: r.text });
  // The choice buttons are disabled now; the next step is the next prompt.
  focusElement(promptBox);
}

function renderDraft(state: DraftState): HTMLElement {
  const slot = state.info.slot;
  const editing = state.edit !== undefined;
  const body = editing
    ? onInput(textArea({ rows: 8, id: `edit-${slot}`, value: state.edit, label: `Draft ${slot}, edited` }), (v) => {
        state.edit = v;
        save();
      })
    : el('div', { class: 'draft-text', attrs: { id: `text-${slot}`, 'data-testid': `draft-text-${slot}` } }, state.text || (state.done ? '(empty)' : '…'));
  const actions = el(
    'div',
    { class: 'row' },
    button('', () => choose(slot, true), { icon: 'thumbsup', appearance: 'icon', title: `Draft ${slot} is better`, id: `up-${slot}` }),
    button('', () => choose(slot, false), { icon: 'thumbsdown', appearance: 'icon', title: `Draft ${slot} is worse`, id: `down-${slot}` }),
    button('', () => toggleEdit(slot), { icon: editing ? 'check' : 'edit', appearance: 'icon', title: editing ? `Done editing draft ${slot}` : `Edit draft ${slot} before accepting it`, id: `edit-button-${slot}` }),
    button('', () => post({ type: 'insert', text: currentText(slot) }), { icon: 'insert', appearance: 'icon', title: `Insert draft ${slot} into the editor`, id: `insert-${slot}` }),
  );
  const card = el(
    'section',
    { class: 'draft', attrs: { 'data-slot': slot, id: `draft-${slot}`, 'aria-label': `Draft ${slot}` } },
    el('h3', {}, `Draft ${slot}`),
    el('div', { class: 'tags' }, ...(state.info.attributes.length > 0 ? state.info.attributes.map((a) => tag(a)) : [tag('no attributes')])),
    el('div', { class: 'why' }, state.info.why),
    body,
    state.cut ? el('div', { class: 'why cut' }, ...richText('Stopped at the token limit (`exact.generation.maxTokens`): it may end mid-sentence. Edit it before choosing, or raise the limit.')) : '',
    actions,
  );
  if (decided && chosen !== undefined) card.classList.add(chosen === slot ? 'preferred' : 'rejected');
  for (const b of actions.querySelectorAll('vscode-button')) setDisabled(b, generating || decided || !state.done);
  return card;
}

function currentText(slot: DraftSlot): string {
  const s = drafts.get(slot);
  return s?.edit ?? s?.text ?? '';
}

function toggleEdit(slot: DraftSlot): void {
  const s = drafts.get(slot);
  if (!s) return;
  if (s.edit !== undefined) {
    s.text = s.edit;
    s.edit = undefined;
    s.edited = true;
  } else s.edit = s.text;
  renderDrafts();
  save();
  // Into the edit box when it opens; back on the edit button when it closes.
  focusElement(document.getElementById(s.edit !== undefined ? `edit-${slot}` : `edit-button-${slot}`));
}

function renderDrafts(): void {
  keepFocus(() => columns.replaceChildren(...[...drafts.values()].map(renderDraft)));
}

function updateButtons(): void {
  setDisabled(generateButton, generating);
  setDisabled(stopButton, !generating);
  setDisabled(skipButton, generating || decided || requestId === undefined);
  renderDrafts();
  save();
}

function showQueue(q: QueueState): void {
  const parts = [q.running || q.pending > 0 ? `Learning: ${q.pending} waiting` : 'Learning: idle', `${countOf(q.learned, 'prompt')} learned`];
  queueLine.textContent = parts.join(' · ');
  if (q.lastError) queueLine.append(el('div', { class: 'error' }, ...richText(q.lastError)));
}

function finishedText(stopped: boolean): string {
  return stopped ? 'Stopped. You can still choose between what was written.' : 'Which draft is better? Thumbs-up the better one, or thumbs-down the worse one.';
}

function finished(stopped: boolean): void {
  generating = false;
  for (const s of drafts.values()) s.done = true;
  // Stop, which had focus, is disabled now: on to the first choice.
  const focusWasLost = document.activeElement === document.body || document.activeElement === stopButton;
  updateButtons();
  setStatus(finishedText(stopped));
  if (focusWasLost) focusElement(document.getElementById('up-A'));
}

/** Catches up with the host's drafts: tokens sent while this view was hidden never arrived. */
function adopt(snapshot: DraftsSnapshot): void {
  const wasGenerating = generating;
  requestId = snapshot.requestId;
  generating = snapshot.running;
  for (const info of snapshot.drafts) {
    const own = drafts.get(info.slot);
    // This page's own edit wins; a page that lost its state (window reload) takes the host's copy.
    const kept = own === undefined ? snapshot.edits?.[info.slot] : undefined;
    drafts.set(info.slot, {
      info,
      text: own?.edited === true ? own.text : kept !== undefined && !kept.open ? kept.text : (snapshot.texts[info.slot] ?? ''),
      done: !snapshot.running || snapshot.done.includes(info.slot),
      cut: snapshot.cut.includes(info.slot),
      edit: own !== undefined ? own.edit : kept?.open === true ? kept.text : undefined,
      edited: own?.edited === true || (kept !== undefined && !kept.open),
    });
  }
  updateButtons();
  if (snapshot.running) setStatus('Generating…', 'info', true);
  else if (wasGenerating) setStatus(finishedText(snapshot.stopped));
}

function restore(current: DraftsSnapshot | undefined): void {
  // A page with no drafts of its own (e.g. the side-by-side panel, just opened) shows the host's.
  const blank = requestId === undefined && drafts.size === 0;
  if (current !== undefined && blank && !generating) {
    if (promptBox.value.trim().length === 0) promptBox.value = current.prompt;
    adopt(current);
    if (!current.running) setStatus(finishedText(current.stopped));
  } else if (current !== undefined && (current.requestId === requestId || (generating && requestId === undefined))) adopt(current);
  else if (generating) {
    // The host no longer generates these drafts (the window was reloaded meanwhile).
    generating = false;
    for (const s of drafts.values()) s.done = true;
    updateButtons();
    setStatus(drafts.size > 0 ? 'Generation was interrupted. You can choose between what was written, or generate again.' : 'Generation was interrupted. Generate again.', 'warning', false, drafts.size === 0);
  }
}

window.addEventListener('message', (event: MessageEvent<HostToWebview>) => {
  const m = event.data;
  switch (m.type) {
    case 'init':
      trusted = m.trusted;
      // What the user typed before the view was hidden or reloaded wins over the selection.
      if (m.prompt && promptBox.value.trim().length === 0) promptBox.value = m.prompt;
      showQueue(m.queue);
      restore(m.current);
      if (!trusted) setStatus('Generation is disabled in untrusted workspaces.', 'warning');
      save();
      break;
    case 'prefill':
      promptBox.value = m.prompt;
      save();
      break;
    case 'draftsStarted':
      // Also when the other drafts page (view or side-by-side panel) asked for them.
      requestId = m.requestId;
      promptBox.value = m.prompt;
      generating = true;
      decided = false;
      chosen = undefined;
      drafts.clear();
      for (const info of m.drafts) drafts.set(info.slot, { info, text: '', done: false, edit: undefined, cut: false });
      updateButtons();
      setStatus('Generating…', 'info', true);
      break;
    case 'draftToken': {
      const s = drafts.get(m.slot);
      if (m.requestId !== requestId || !s) break;
      s.text += m.text;
      const node = document.getElementById(`text-${m.slot}`);
      if (node) node.textContent = s.text;
      save();
      break;
    }
    case 'draftDone': {
      const s = drafts.get(m.slot);
      if (m.requestId !== requestId || !s) break;
      s.text = m.text;
      s.done = true;
      s.cut = m.stoppedAtLimit === true;
      save();
      break;
    }
    case 'draftsFinished':
      if (m.requestId !== requestId) break;
      finished(m.stopped);
      break;
    case 'draftsFailed':
      // Nothing to choose from: no half-empty cards, no Skip, and a way to try again.
      generating = false;
      requestId = undefined;
      drafts.clear();
      updateButtons();
      setStatus(`Could not generate drafts: ${m.message}`, 'error', false, true);
      focusElement(document.getElementById('retry'));
      break;
    case 'choiceSaved':
      if (m.requestId !== requestId) break;
      decided = true; // perhaps chosen on the other drafts page
      updateButtons();
      setStatus('Saved. EXACT is learning from this choice in the background.');
      break;
    case 'choiceFailed':
      decided = false;
      chosen = undefined;
      updateButtons();
      setStatus(`Your choice was not saved: ${m.message}`, 'error');
      break;
    case 'queue':
      showQueue(m.queue);
      break;
    case 'notice':
      setStatus(m.text, m.level);
      break;
    case 'profile':
      break;
  }
});

showStatus();
updateButtons();
post({ type: 'ready' });
