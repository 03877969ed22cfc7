/**
 * Prompt construction exactly as the paper's figures 2-7: the user's prompt, a new line,
 * then `Attributes: <a, b, c>`. With no attributes the prompt is left untouched.
 */

import { isValidAttributeName, MAX_ATTRIBUTES_PER_ENTRY } from './attributes';

export const ATTRIBUTE_BLOCK_KEYWORD = 'Attributes:';

/**
 * The names that may be injected: valid names only (whatever a stored or imported entry holds),
 * at most MAX_ATTRIBUTES_PER_ENTRY of them, in their order.
 */
function injectableAttributes(attributes: ReadonlyArray<string>): string[] {
  return attributes.filter((a) => isValidAttributeName(a)).slice(0, MAX_ATTRIBUTES_PER_ENTRY);
}

export function attributeBlock(attributes: ReadonlyArray<string>): string {
  const names = injectableAttributes(attributes);
  return names.length === 0 ? '' : `${ATTRIBUTE_BLOCK_KEYWORD} <${names.join(', ')}>`;
}

/** x^A = (x, A): the prompt with the attribute block appended on its own line. */
export function buildAttributedPrompt(prompt: string, attributes: ReadonlyArray<string>): string {
  const block = attributeBlock(attributes);
  return block === '' ? prompt : `${prompt}\n${block}`;
}

/** Reads back the attributes of a prompt built by buildAttributedPrompt (last line only). */
export function parseAttributedPrompt(text: string): { prompt: string; attributes: string[] } {
  const cut = text.lastIndexOf('\n');
  const lastLine = text.slice(cut + 1);
  const match = /^Attributes: <([^<>\n]*)>$/u.exec(lastLine);
  if (cut < 0 || match === null) return { prompt: text, attributes: [] };
  const inner = match[1] ?? '';
  return { prompt: text.slice(0, cut), attributes: inner.length === 0 ? [] : inner.split(', ') };
}
