import type { HostToWebview, ProfileData, ProfileEntry, WebviewToHost } from '../../src/shared/protocol';
import { countOf } from '../../src/shared/plural';
import { badge, button, divider, el, focusElement, keepFocus, onInput, richText, tag, textField } from './components';

/** Where a message appears: next to what the user acted on. */
type Anchor = 'top' | 'custom' | { entry: string };

/**
 * What the user is typing, kept with VS Code's webview state so that neither a re-render (learning
 * finished, data changed) nor a tab switch (the panel is torn down while hidden) loses it.
 */
interface SavedState {
  /** The entry whose attributes are being edited, and the text in its field. */
  editing: { pairId: string; text: string } | undefined;
  newAttribute: string;
  notice: { text: string; level: 'info' | 'warning' | 'error'; anchor: Anchor } | undefined;
}

declare function acquireVsCodeApi(): { postMessage(msg: WebviewToHost): void; setState(s: SavedState): void; getState(): SavedState | undefined };
const vscode = acquireVsCodeApi();
const post = (m: WebviewToHost): void => vscode.postMessage(m);

const root = document.getElementById('root')!;
const saved = vscode.getState();
let editing = saved?.editing;
let newAttribute = saved?.newAttribute ?? '';
let notice = saved?.notice;
/** The action waiting for the host's answer; its field is cleared only when the answer is not an error. */
let awaiting: { anchor: Anchor; onSuccess?: () => void } | undefined;
let data: ProfileData | undefined;

function save(): void {
  vscode.setState({ editing, newAttribute, notice });
}

function sameAnchor(a: Anchor | undefined, b: Anchor): boolean {
  return typeof a === 'object' && typeof b === 'object' ? a.entry === b.entry : a === b;
}

/** The message line, when it belongs at `anchor`. */
function noticeAt(anchor: Anchor): HTMLElement | '' {
  if (!notice || !notice.text || !sameAnchor(notice.anchor, anchor)) return '';
  return el('div', { class: `status ${notice.level}`, attrs: { id: 'status', role: 'status', 'aria-live': 'polite' } }, ...richText(notice.text));
}

/** Runs a host action whose message belongs next to `anchor`. */
function act(anchor: Anchor, message: WebviewToHost, onSuccess?: () => void): void {
  awaiting = { anchor, ...(onSuccess ? { onSuccess } : {}) };
  notice = undefined;
  save();
  keepFocus(render);
  post(message);
}

function section(title: string, id: string, ...children: (Node | string)[]): HTMLElement {
  return el('section', { attrs: { id, 'aria-label': title } }, el('h2', {}, title), ...children);
}

function frequencyChart(d: ProfileData): HTMLElement {
  if (d.frequencies.length === 0) return el('p', { class: 'muted' }, 'No attributes learned yet. Choose between drafts in the EXACT view to teach it.');
  const max = Math.max(...d.frequencies.map((f) => f.count));
  const describe = new Map(d.library.map((a) => [a.name, a.description]));
  return el(
    'div',
    { class: 'chart', attrs: { role: 'list' } },
    ...d.frequencies.map((f) => {
      const bar = el('div', { class: 'bar' });
      bar.style.width = `${(100 * f.count) / max}%`;
      const row = el(
        'div',
        { class: 'chart-row', attrs: { role: 'listitem', 'data-attribute': f.attribute } },
        el('span', { class: 'chart-label' }, f.attribute),
        el('div', { class: 'bar-track' }, bar),
        el('span', { class: 'chart-value' }, `${f.count} (${Math.round(100 * f.share)}%)`),
      );
      row.title = describe.get(f.attribute) ?? '';
      return row;
    }),
  );
}

function modes(d: ProfileData): HTMLElement {
  if (d.modes.length === 0) return el('p', { class: 'muted' }, 'Topic modes appear once a few prompts are learned.');
  return el(
    'div',
    { class: 'modes' },
    ...d.modes.map((m) =>
      el(
        'div',
        { class: 'mode' },
        el('div', { class: 'mode-title' }, `“${truncate(m.label, 90)}”`, ' ', badge(`${m.size} prompt${m.size === 1 ? '' : 's'}`)),
        el('div', { class: 'tags' }, ...m.attributes.slice(0, 5).map((a) => tag(`${a.attribute} ×${a.count}`))),
      ),
    ),
  );
}

function entryRow(e: ProfileEntry): HTMLElement[] {
  const name = `“${truncate(e.prompt, 40)}”`;
  const edit = editing?.pairId === e.pairId ? editing : undefined;
  const attrs =
    edit !== undefined
      ? el(
          'div',
          { class: 'row' },
          onInput(textField({ id: `edit-${e.pairId}`, placeholder: 'Comma-separated attributes', value: edit.text, label: `Attributes of ${name}, separated by commas` }), (v) => {
            edit.text = v;
            save();
          }),
          button('Save', () => {
            const list = edit.text.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
            act({ entry: e.pairId }, { type: 'editAttributes', pairId: e.pairId, attributes: list }, () => (editing = undefined));
          }, { icon: 'check', label: `Save the attributes of ${name}` }),
          button('Cancel', () => {
            editing = undefined;
            save();
            render();
            focusElement(document.getElementById(`edit-button-${e.pairId}`));
          }, { appearance: 'secondary', label: `Cancel editing ${name}` }),
        )
      : el(
          'div',
          { class: 'tags' },
          ...e.attributes.map((a) => tag(a)),
          e.attributes.length === 0 && e.unusedBecause === undefined ? el('span', { class: 'muted' }, 'none: no attribute explained this choice, so similar prompts get none') : '',
          e.edited ? el('span', { class: 'muted' }, ' (edited by you)') : '',
          e.unusedBecause !== undefined ? el('div', { class: 'muted unused' }, e.unusedBecause) : '',
        );
  const row = el(
    'tr',
    { attrs: { 'data-pair': e.pairId } },
    el('td', { class: 'prompt-cell' }, truncate(e.prompt, 160)),
    el('td', {}, attrs),
    el('td', { class: 'num' }, e.gain.toFixed(2)),
    el('td', { class: 'muted' }, e.model),
    el(
      'td',
      { class: 'actions' },
      button('', () => {
        editing = { pairId: e.pairId, text: e.attributes.join(', ') };
        save();
        render();
        focusElement(document.getElementById(`edit-${e.pairId}`));
      }, { icon: 'edit', appearance: 'icon', title: `Edit the attributes of ${name}`, id: `edit-button-${e.pairId}` }),
      button('', () => act('top', { type: 'deleteEntry', pairId: e.pairId }), { icon: 'trash', appearance: 'icon', title: `Delete ${name} and what was learned from it`, id: `delete-${e.pairId}` }),
    ),
  );
  const message = noticeAt({ entry: e.pairId });
  return message ? [row, el('tr', { class: 'row-notice' }, el('td', { attrs: { colspan: '5' } }, message))] : [row];
}

function entries(d: ProfileData): HTMLElement {
  if (d.entries.length === 0) return el('p', { class: 'muted' }, 'Nothing learned yet.');
  return el(
    'table',
    { class: 'entries' },
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        el('th', {}, 'Prompt'),
        el('th', {}, 'Attributes'),
        el('th', { class: 'num', attrs: { title: `Gain: ${GAIN_EXPLAINED}` } }, 'Gain (nats)'),
        el('th', {}, 'Model'),
        el('th', {}, el('span', { class: 'visually-hidden' }, 'Actions')),
      ),
    ),
    el('tbody', {}, ...d.entries.flatMap(entryRow)),
  );
}

const GAIN_EXPLAINED = 'how strongly the attributes favour the draft you chose over the other one. 0 means no effect; 1 nat means your draft became about 2.7 times as likely as the other, 2 nats about 7.4 times.';

function entriesHelp(): HTMLElement {
  return el(
    'div',
    { attrs: { id: 'entries-help' } },
    el('p', { class: 'muted' }, `Gain (in nats, the natural unit of likelihood): ${GAIN_EXPLAINED}`),
    el(
      'details',
      { class: 'muted' },
      el('summary', {}, 'Details'),
      el(
        'p',
        {},
        'Gain is the log-likelihood of your chosen draft minus that of the other draft, with the attributes named in the prompt, minus the same difference without them (natural logarithms, hence nats). ',
        'For each choice EXACT picks, one at a time, the attributes that raise this difference most (greedy selection, as in the EXACT paper).',
      ),
    ),
  );
}

function customAttributes(d: ProfileData): HTMLElement {
  const field = onInput(textField({ id: 'custom-name', placeholder: 'New attribute, e.g. Playful', maxLength: 40, value: newAttribute, label: 'New attribute' }), (v) => {
    newAttribute = v;
    save();
  });
  const custom = d.library.filter((a) => a.custom);
  return el(
    'div',
    {},
    el(
      'div',
      { class: 'tags' },
      ...custom.map((a) =>
        el('span', { class: 'custom' }, tag(a.name), button('', () => act('custom', { type: 'removeCustomAttribute', name: a.name }), { icon: 'close', appearance: 'icon', title: `Remove ${a.name}` })),
      ),
      custom.length === 0 ? el('span', { class: 'muted' }, 'No custom attributes.') : '',
    ),
    el('div', { class: 'row' }, field, button('Add', () => act('custom', { type: 'addCustomAttribute', name: newAttribute }, () => (newAttribute = '')), { icon: 'add', id: 'add-custom' })),
    noticeAt('custom'),
    el('details', {}, el('summary', {}, `All ${d.library.length} attributes`), el('ul', { class: 'library' }, ...d.library.map((a) => el('li', {}, el('b', {}, a.name), ` — ${a.description}`)))),
  );
}

function render(): void {
  if (!data) {
    root.replaceChildren(el('p', {}, 'Loading your profile…'));
    return;
  }
  const d = data;
  const accuracy = d.accuracy
    ? el(
        'div',
        { attrs: { id: 'accuracy' } },
        el('p', {}, `When EXACT predicts a past choice's attributes from your other choices, they favour the draft you chose in ${d.accuracy.improved} of ${d.accuracy.total} cases (${Math.round(100 * d.accuracy.accuracy)}%) and work against it in ${d.accuracy.harmed} (${Math.round((100 * d.accuracy.harmed) / Math.max(1, d.accuracy.total))}%).`),
        el('details', { class: 'muted' }, el('summary', {}, 'Details'), el('p', {}, d.accuracyNote)),
      )
    : el('p', { class: 'muted', attrs: { id: 'accuracy' } }, d.accuracyNote);
  root.replaceChildren(
    el('h1', {}, 'Your attribute profile'),
    el('p', { class: 'muted' }, `${countOf(d.entries.length, 'prompt')} learned · ${d.pending} waiting · model ${d.model || '(not set)'}`),
    d.scorer !== '' ? el('p', { class: 'muted', attrs: { id: 'scorer-reason' } }, d.scorer) : '',
    d.scoring ? el('p', { class: 'muted scoring' }, d.scoring) : '',
    d.needsReindex ? el('div', { class: 'status warning' }, 'Some entries were learned with another model or embedding model. ', button('Re-index', () => act('top', { type: 'reindex' }), { icon: 'refresh' })) : '',
    d.failed.length > 0
      ? el(
          'div',
          { class: 'status warning', attrs: { id: 'failed' } },
          `Learning failed for ${countOf(d.failed.length, 'choice')} (last: ${truncate(d.failed[d.failed.length - 1]!.error, 160)}). They are tried again later. `,
          button('Retry failed', () => act('top', { type: 'retryFailed' }), { icon: 'debug-restart' }),
        )
      : '',
    noticeAt('top'),
    section('Preferred attributes', 'frequencies', frequencyChart(d)),
    section('Topic modes', 'modes', modes(d)),
    section('How well EXACT predicts your choices', 'accuracy-section', accuracy),
    section('Learned prompts', 'entries', entries(d), d.entries.length > 0 ? entriesHelp() : ''),
    section('Custom attributes', 'custom', customAttributes(d)),
    divider(),
    el(
      'div',
      { class: 'row' },
      button('Export…', () => act('top', { type: 'exportData' }), { icon: 'export', appearance: 'secondary' }),
      button('Import…', () => act('top', { type: 'importData' }), { icon: 'cloud-download', appearance: 'secondary' }),
      button('Re-index', () => act('top', { type: 'reindex' }), { icon: 'refresh', appearance: 'secondary' }),
      button('Reset…', () => act('top', { type: 'reset' }), { icon: 'trash', appearance: 'secondary' }),
    ),
  );
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

window.addEventListener('message', (event: MessageEvent<HostToWebview>) => {
  const m = event.data;
  if (m.type === 'profile') {
    data = m.data;
    // The entry being edited may be gone (deleted, reset, re-imported).
    if (editing && !data.entries.some((e) => e.pairId === editing?.pairId)) editing = undefined;
  } else if (m.type === 'notice') {
    notice = { text: m.text, level: m.level, anchor: awaiting?.anchor ?? 'top' };
    if (m.level !== 'error') awaiting?.onSuccess?.();
    awaiting = undefined;
  } else return;
  save();
  keepFocus(render);
});

render();
post({ type: 'ready' });
