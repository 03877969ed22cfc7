/**
 * Prompt construction exactly as the paper's figures 2-7: the user's prompt, a new line,
 * then `Attributes: <a, b, c>`. With no attributes the prompt is left untouched.
 */

const ATTRIBUTE_BLOCK_KEYWORD = 'Attributes:';

export function attributeBlock(attributes: ReadonlyArray<string>): string {
  return attributes.length === 0 ? '' : `${ATTRIBUTE_BLOCK_KEYWORD} <${attributes.join(', ')}>`;
}

/** x^A = (x, A): the prompt with the attribute block appended on its own line. */
export function buildAttributedPrompt(prompt: string, attributes: ReadonlyArray<string>): string {
  return attributes.length === 0 ? prompt : `${prompt}\n${attributeBlock(attributes)}`;
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
