import type { DraftInfo, DraftSlot, HostToWebview, QueueState, WebviewToHost } from '../../src/shared/protocol';
import { countOf } from '../../src/shared/plural';
import { button, el, setDisabled, spinner, tag, textArea, type TextBox } from './components';

declare function acquireVsCodeApi(): { postMessage(msg: WebviewToHost): void; setState(s: unknown): void; getState(): unknown };
const vscode = acquireVsCodeApi();
const post = (m: WebviewToHost): void => vscode.postMessage(m);

interface DraftState {
  info: DraftInfo;
  text: string;
  done: boolean;
  editing: boolean;
  /** Generation ran into the token limit, so the text may end mid-sentence. */
  cut: boolean;
}

let requestId: string | undefined;
let generating = false;
let decided = false;
let trusted = true;
const drafts = new Map<DraftSlot, DraftState>();

const root = document.getElementById('root')!;
const promptBox = textArea({ placeholder: 'What should the drafts be about? (prefilled from your selection)', rows: 4, id: 'prompt', label: 'Prompt' });
const generateButton = button('Generate drafts', () => generate(), { icon: 'sparkle', id: 'generate' });
const stopButton = button('Stop', () => post({ type: 'stop' }), { icon: 'debug-stop', appearance: 'secondary', id: 'stop', disabled: true });
const skipButton = button('Skip', () => skip(), { icon: 'debug-step-over', appearance: 'secondary', id: 'skip', disabled: true });
const status = el('div', { class: 'status', attrs: { id: 'status', role: 'status', 'aria-live': 'polite' } });
const columns = el('div', { class: 'drafts', attrs: { id: 'drafts' } });
const queueLine = el('div', { class: 'queue', attrs: { id: 'queue' } });
const profileLink = button('Profile', () => post({ type: 'openProfile' }), { icon: 'person', appearance: 'secondary', title: 'Show attribute profile' });

root.append(
  promptBox,
  el('div', { class: 'row' }, generateButton, stopButton, skipButton),
  status,
  columns,
  el('div', { class: 'footer' }, queueLine, profileLink),
);

function setStatus(text: string, level: 'info' | 'warning' | 'error' = 'info', busy = false): void {
  status.className = `status ${level}`;
  status.replaceChildren(...(busy ? [spinner()] : []), document.createTextNode(text));
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
  requestId = undefined;
  drafts.clear();
  columns.replaceChildren();
  updateButtons();
  setStatus('Retrieving your attributes and generating two drafts…', 'info', true);
}

function skip(): void {
  if (requestId !== undefined) post({ type: 'skip', requestId });
  decided = true;
  updateButtons();
  setStatus('Skipped. Nothing was recorded.');
}

function choose(slot: DraftSlot, thumbsUp: boolean): void {
  if (requestId === undefined || decided) return;
  const preferred: DraftSlot = thumbsUp ? slot : slot === 'A' ? 'B' : 'A';
  const rejected: DraftSlot = preferred === 'A' ? 'B' : 'A';
  const p = drafts.get(preferred);
  const r = drafts.get(rejected);
  if (!p || !r) return;
  const preferredText = p.editing ? (document.getElementById(`edit-${preferred}`) as TextBox | null)?.value ?? p.text : p.text;
  if (preferredText.trim().length === 0 || r.text.trim().length === 0) {
    setStatus('Both drafts need text before you choose.', 'warning');
    return;
  }
  decided = true;
  updateButtons();
  setStatus(`Saving your choice (Draft ${preferred})…`, 'info', true);
  post({ type: 'choose', requestId, preferred, preferredText, rejectedText: r.text });
  columns.querySelector(`[data-slot="${preferred}"]`)?.classList.add('preferred');
  columns.querySelector(`[data-slot="${rejected}"]`)?.classList.add('rejected');
}

function renderDraft(state: DraftState): HTMLElement {
  const slot = state.info.slot;
  const body = state.editing
    ? textArea({ rows: 8, id: `edit-${slot}`, value: state.text })
    : el('div', { class: 'draft-text', attrs: { id: `text-${slot}`, 'data-testid': `draft-text-${slot}` } }, state.text || (state.done ? '(empty)' : '…'));
  const actions = el(
    'div',
    { class: 'row' },
    button('', () => choose(slot, true), { icon: 'thumbsup', appearance: 'icon', title: `Draft ${slot} is better`, id: `up-${slot}` }),
    button('', () => choose(slot, false), { icon: 'thumbsdown', appearance: 'icon', title: `Draft ${slot} is worse`, id: `down-${slot}` }),
    button('', () => toggleEdit(slot), { icon: state.editing ? 'check' : 'edit', appearance: 'icon', title: state.editing ? 'Done editing' : `Edit draft ${slot} before accepting it`, id: `edit-button-${slot}` }),
    button('', () => post({ type: 'insert', text: currentText(slot) }), { icon: 'insert', appearance: 'icon', title: `Insert draft ${slot} into the editor`, id: `insert-${slot}` }),
  );
  const card = el(
    'section',
    { class: 'draft', attrs: { 'data-slot': slot, id: `draft-${slot}`, 'aria-label': `Draft ${slot}` } },
    el('h3', {}, `Draft ${slot}`),
    el('div', { class: 'tags' }, ...(state.info.attributes.length > 0 ? state.info.attributes.map((a) => tag(a)) : [tag('no attributes')])),
    el('div', { class: 'why' }, state.info.why),
    body,
    state.cut ? el('div', { class: 'why cut' }, 'Stopped at the token limit (exact.generation.maxTokens): it may end mid-sentence. Edit it before choosing, or raise the limit.') : '',
    actions,
  );
  for (const b of actions.querySelectorAll('vscode-button')) setDisabled(b, generating || decided || !state.done);
  return card;
}

function currentText(slot: DraftSlot): string {
  const s = drafts.get(slot);
  if (!s) return '';
  return s.editing ? (document.getElementById(`edit-${slot}`) as TextBox | null)?.value ?? s.text : s.text;
}

function toggleEdit(slot: DraftSlot): void {
  const s = drafts.get(slot);
  if (!s) return;
  if (s.editing) s.text = currentText(slot);
  s.editing = !s.editing;
  renderDrafts();
}

function renderDrafts(): void {
  columns.replaceChildren(...[...drafts.values()].map(renderDraft));
}

function updateButtons(): void {
  setDisabled(generateButton, generating);
  setDisabled(stopButton, !generating);
  setDisabled(skipButton, generating || decided || requestId === undefined);
  renderDrafts();
}

function showQueue(q: QueueState): void {
  const parts = [q.running || q.pending > 0 ? `Learning: ${q.pending} waiting` : 'Learning: idle', `${countOf(q.learned, 'prompt')} learned`];
  queueLine.textContent = parts.join(' · ');
  if (q.lastError) queueLine.append(el('div', { class: 'error' }, q.lastError));
}

window.addEventListener('message', (event: MessageEvent<HostToWebview>) => {
  const m = event.data;
  switch (m.type) {
    case 'init':
      trusted = m.trusted;
      if (m.prompt) promptBox.value = m.prompt;
      showQueue(m.queue);
      if (!trusted) setStatus('Generation is disabled in untrusted workspaces.', 'warning');
      break;
    case 'prefill':
      promptBox.value = m.prompt;
      break;
    case 'draftsStarted':
      requestId = m.requestId;
      for (const info of m.drafts) drafts.set(info.slot, { info, text: '', done: false, editing: false, cut: false });
      updateButtons();
      setStatus('Generating…', 'info', true);
      break;
    case 'draftToken': {
      const s = drafts.get(m.slot);
      if (m.requestId !== requestId || !s) break;
      s.text += m.text;
      const node = document.getElementById(`text-${m.slot}`);
      if (node) node.textContent = s.text;
      break;
    }
    case 'draftDone': {
      const s = drafts.get(m.slot);
      if (m.requestId !== requestId || !s) break;
      s.text = m.text;
      s.done = true;
      s.cut = m.stoppedAtLimit === true;
      break;
    }
    case 'draftsFinished':
      if (m.requestId !== requestId) break;
      generating = false;
      for (const s of drafts.values()) s.done = true;
      updateButtons();
      setStatus(m.stopped ? 'Stopped. You can still choose between what was written.' : 'Which draft is better? Thumbs-up the better one, or thumbs-down the worse one.');
      break;
    case 'draftsFailed':
      generating = false;
      updateButtons();
      setStatus(m.message, 'error');
      break;
    case 'choiceSaved':
      setStatus('Saved. EXACT is learning from this choice in the background.');
      break;
    case 'choiceFailed':
      decided = false;
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

post({ type: 'ready' });
