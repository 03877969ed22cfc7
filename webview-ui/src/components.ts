/**
 * Our small UI components. They are the only place that touches @vscode/webview-ui-toolkit
 * (archived upstream), so moving to another component library changes this file alone.
 *
 * The toolkit's tag, badge and progress ring are not used: their templates carry `style`
 * attributes, which our Content-Security-Policy refuses (no inline styles). Tag, badge and
 * spinner below are plain elements styled by styles.css.
 */
import { provideVSCodeDesignSystem, vsCodeButton, vsCodeDivider, vsCodeTextArea, vsCodeTextField } from '@vscode/webview-ui-toolkit';

provideVSCodeDesignSystem().register(vsCodeButton(), vsCodeTextArea(), vsCodeTextField(), vsCodeDivider());

type Children = (Node | string | undefined | false)[];

/** Creates an element with classes, attributes and children (strings become text nodes, never HTML). */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: { class?: string; attrs?: Record<string, string> } = {}, ...children: Children): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (props.class) node.className = props.class;
  for (const [k, v] of Object.entries(props.attrs ?? {})) node.setAttribute(k, v);
  append(node, children);
  return node;
}

function append(node: Element, children: Children): void {
  for (const c of children) if (c !== undefined && c !== false) node.append(typeof c === 'string' ? document.createTextNode(c) : c);
}

/** A message as text, with `backticked` spans shown as code instead of raw backticks. */
export function richText(text: string): Node[] {
  return text.split('`').map((part, i) => (i % 2 === 1 && part.length > 0 ? el('code', {}, part) : document.createTextNode(part)));
}

/** The native input or textarea inside one of our text boxes (or the element itself). */
function control(node: Element): HTMLInputElement | HTMLTextAreaElement | undefined {
  if (node instanceof HTMLInputElement || node instanceof HTMLTextAreaElement) return node;
  const inner = node.shadowRoot?.querySelector('input, textarea');
  return inner instanceof HTMLInputElement || inner instanceof HTMLTextAreaElement ? inner : undefined;
}

/**
 * Moves keyboard focus to the element (into a text box's native control, caret at the end), only
 * while this page has the focus: a page the user is not in must not pull it away from where they are.
 */
export function focusElement(node: Element | null): void {
  if (!(node instanceof HTMLElement) || !document.hasFocus()) return;
  const inner = control(node);
  if (inner) {
    inner.focus();
    inner.setSelectionRange(inner.value.length, inner.value.length);
  } else node.focus();
}

/**
 * Runs `render`, which may replace the focused element, and gives focus (and a text box's
 * selection) back to the element with the same id afterwards, so re-rendering never takes the
 * keyboard away from the user.
 */
export function keepFocus(render: () => void): void {
  const active = document.activeElement;
  const id = active instanceof HTMLElement && active !== document.body ? active.id : '';
  const inner = active ? control(active) : undefined;
  const selection = inner ? [inner.selectionStart ?? 0, inner.selectionEnd ?? 0] : undefined;
  render();
  if (!id) return;
  const next = document.getElementById(id);
  if (!next || next === active || next.hasAttribute('disabled')) return;
  const nextInner = control(next);
  if (nextInner && selection) {
    nextInner.focus();
    nextInner.setSelectionRange(selection[0]!, selection[1]!);
  } else next.focus();
}

function icon(name: string): HTMLElement {
  return el('span', { class: `codicon codicon-${name}`, attrs: { 'aria-hidden': 'true' } });
}

export interface ButtonOptions {
  icon?: string;
  appearance?: 'primary' | 'secondary' | 'icon';
  title?: string;
  /** The accessible name when it must say more than the visible label (e.g. which row it acts on). */
  label?: string;
  id?: string;
  disabled?: boolean;
}

export function button(label: string, onClick: () => void, options: ButtonOptions = {}): HTMLElement {
  const b = document.createElement('vscode-button');
  b.setAttribute('appearance', options.appearance ?? 'primary');
  if (options.title) b.setAttribute('title', options.title);
  if (options.id) b.id = options.id;
  b.setAttribute('aria-label', options.label ?? options.title ?? label);
  if (options.icon) {
    const i = icon(options.icon);
    if (options.appearance !== 'icon') i.setAttribute('slot', 'start');
    b.append(i);
  }
  if (options.appearance !== 'icon') b.append(document.createTextNode(label));
  setDisabled(b, options.disabled ?? false);
  b.addEventListener('click', () => {
    if (!b.hasAttribute('disabled')) onClick();
  });
  return b;
}

export function setDisabled(node: Element, disabled: boolean): void {
  if (disabled) node.setAttribute('disabled', '');
  else node.removeAttribute('disabled');
}

export interface TextBox extends HTMLElement {
  value: string;
}

/** Calls `onInput` with the box's value whenever the user changes it. */
export function onInput(box: TextBox, onInput: (value: string) => void): TextBox {
  box.addEventListener('input', () => onInput(box.value));
  return box;
}

export function textArea(options: { placeholder?: string; rows?: number; id?: string; value?: string; label?: string }): TextBox {
  const t = document.createElement('vscode-text-area') as TextBox;
  if (options.placeholder) t.setAttribute('placeholder', options.placeholder);
  t.setAttribute('rows', String(options.rows ?? 4));
  t.setAttribute('resize', 'vertical');
  if (options.id) t.id = options.id;
  if (options.label) t.append(document.createTextNode(options.label));
  t.value = options.value ?? '';
  return t;
}

export function textField(options: { placeholder?: string; id?: string; maxLength?: number; value?: string; label?: string }): TextBox {
  const t = document.createElement('vscode-text-field') as TextBox;
  if (options.placeholder) t.setAttribute('placeholder', options.placeholder);
  if (options.id) t.id = options.id;
  if (options.maxLength) t.setAttribute('maxlength', String(options.maxLength));
  if (options.label) t.setAttribute('aria-label', options.label);
  t.value = options.value ?? '';
  return t;
}

export function tag(text: string, title?: string): HTMLElement {
  const t = el('span', { class: 'tag' }, text);
  if (title) t.title = title;
  return t;
}

export function badge(text: string): HTMLElement {
  return el('span', { class: 'badge' }, text);
}

export function divider(): HTMLElement {
  return document.createElement('vscode-divider');
}

export function spinner(): HTMLElement {
  return el('span', { class: 'codicon codicon-loading codicon-modifier-spin', attrs: { 'aria-hidden': 'true' } });
}
