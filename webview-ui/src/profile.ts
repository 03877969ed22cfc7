import type { HostToWebview, ProfileData, ProfileEntry, WebviewToHost } from '../../src/shared/protocol';
import { countOf } from '../../src/shared/plural';
import { badge, button, divider, el, tag, textField } from './components';

declare function acquireVsCodeApi(): { postMessage(msg: WebviewToHost): void };
const vscode = acquireVsCodeApi();
const post = (m: WebviewToHost): void => vscode.postMessage(m);

const root = document.getElementById('root')!;
const status = el('div', { class: 'status', attrs: { id: 'status', role: 'status', 'aria-live': 'polite' } });
let editing: string | undefined;
let data: ProfileData | undefined;

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

function entryRow(e: ProfileEntry): HTMLElement {
  const attrs =
    editing === e.pairId
      ? (() => {
          const field = textField({ id: `edit-${e.pairId}`, placeholder: 'Comma-separated attributes' });
          field.value = e.attributes.join(', ');
          return el(
            'div',
            { class: 'row' },
            field,
            button('Save', () => {
              const list = field.value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
              editing = undefined;
              post({ type: 'editAttributes', pairId: e.pairId, attributes: list });
            }, { icon: 'check' }),
            button('Cancel', () => {
              editing = undefined;
              render();
            }, { appearance: 'secondary' }),
          );
        })()
      : el(
          'div',
          { class: 'tags' },
          ...e.attributes.map((a) => tag(a)),
          e.attributes.length === 0 && e.unusedBecause === undefined ? el('span', { class: 'muted' }, 'none: no attribute explained this choice, so similar prompts get none') : '',
          e.edited ? el('span', { class: 'muted' }, ' (edited by you)') : '',
          e.unusedBecause !== undefined ? el('div', { class: 'muted unused' }, e.unusedBecause) : '',
        );
  return el(
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
        editing = e.pairId;
        render();
      }, { icon: 'edit', appearance: 'icon', title: 'Edit attributes' }),
      button('', () => post({ type: 'deleteEntry', pairId: e.pairId }), { icon: 'trash', appearance: 'icon', title: 'Delete this entry' }),
    ),
  );
}

function entries(d: ProfileData): HTMLElement {
  if (d.entries.length === 0) return el('p', { class: 'muted' }, 'Nothing learned yet.');
  return el(
    'table',
    { class: 'entries' },
    el('thead', {}, el('tr', {}, ...['Prompt', 'Attributes', 'Gain', 'Model', ''].map((h) => el('th', {}, h)))),
    el('tbody', {}, ...d.entries.map(entryRow)),
  );
}

function customAttributes(d: ProfileData): HTMLElement {
  const field = textField({ id: 'custom-name', placeholder: 'New attribute, e.g. Playful', maxLength: 40 });
  const custom = d.library.filter((a) => a.custom);
  return el(
    'div',
    {},
    el(
      'div',
      { class: 'tags' },
      ...custom.map((a) =>
        el('span', { class: 'custom' }, tag(a.name), button('', () => post({ type: 'removeCustomAttribute', name: a.name }), { icon: 'close', appearance: 'icon', title: `Remove ${a.name}` })),
      ),
      custom.length === 0 ? el('span', { class: 'muted' }, 'No custom attributes.') : '',
    ),
    el('div', { class: 'row' }, field, button('Add', () => post({ type: 'addCustomAttribute', name: field.value }), { icon: 'add', id: 'add-custom' })),
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
        'p',
        { attrs: { id: 'accuracy' } },
        `Injected attributes widen the preferred-vs-rejected gap on ${d.accuracy.improved} of ${d.accuracy.total} held-out choices (${Math.round(100 * d.accuracy.accuracy)}%) and narrow it on ${d.accuracy.harmed} (harm ${Math.round((100 * d.accuracy.harmed) / Math.max(1, d.accuracy.total))}%). `,
        el('span', { class: 'muted' }, d.accuracyNote),
      )
    : el('p', { class: 'muted', attrs: { id: 'accuracy' } }, d.accuracyNote);
  root.replaceChildren(
    el('h1', {}, 'Your attribute profile'),
    el('p', { class: 'muted' }, `${countOf(d.entries.length, 'prompt')} learned · ${d.pending} waiting · model ${d.model || '(not set)'}`),
    d.scoring ? el('p', { class: 'muted scoring' }, d.scoring) : '',
    d.needsReindex ? el('div', { class: 'status warning' }, 'Some entries were learned with another model or embedding model. ', button('Re-index', () => post({ type: 'reindex' }), { icon: 'refresh' })) : '',
    d.failed.length > 0
      ? el(
          'div',
          { class: 'status warning', attrs: { id: 'failed' } },
          `Learning failed for ${countOf(d.failed.length, 'choice')} (last: ${truncate(d.failed[d.failed.length - 1]!.error, 160)}). They are tried again later. `,
          button('Retry failed', () => post({ type: 'retryFailed' }), { icon: 'debug-restart' }),
        )
      : '',
    status,
    section('Preferred attributes', 'frequencies', frequencyChart(d)),
    section('Topic modes', 'modes', modes(d)),
    section('Modeling accuracy', 'accuracy-section', accuracy),
    section('Learned prompts', 'entries', entries(d)),
    section('Custom attributes', 'custom', customAttributes(d)),
    divider(),
    el(
      'div',
      { class: 'row' },
      button('Export…', () => post({ type: 'exportData' }), { icon: 'export', appearance: 'secondary' }),
      button('Import…', () => post({ type: 'importData' }), { icon: 'cloud-download', appearance: 'secondary' }),
      button('Re-index', () => post({ type: 'reindex' }), { icon: 'refresh', appearance: 'secondary' }),
      button('Reset…', () => post({ type: 'reset' }), { icon: 'trash', appearance: 'secondary' }),
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
    render();
  } else if (m.type === 'notice') {
    status.className = `status ${m.level}`;
    status.textContent = m.text;
  }
});

render();
post({ type: 'ready' });
