/**
 * The one prompt renderer. Scoring (llama.cpp, teacher-forced) and generation (Ollama in raw
 * mode, or llama.cpp) both render a single user turn through here, so they see the same text:
 *
 *   render(x, A) = head + userText(x) + "\n" + attributeBlock(A) + tail   (the model then writes y + end)
 *
 * The format is chosen from the model's own chat template (the GGUF `tokenizer.chat_template`
 * Jinja text, or the template Ollama's /api/show reports) by recognising its turn markers.
 *
 * User text stays text. Every engine must go through `renderPromptPieces` (token-level engines)
 * or `renderPrompt` (engines that send one string which the server tokenizes with special tokens
 * parsed, like Ollama's raw mode), and pass responses it appends to a string prompt through
 * `userText`:
 *  - control markers in user text (the chat formats' special-token strings, e.g. `<|im_end|>`,
 *    `<start_of_turn>`, `[INST]`, `</s>`) get a space after their first character, so no
 *    tokenizer matches them as control tokens, and a reader still sees what was written;
 *  - a line of user text that starts like the attribute block (`Attributes:`) is marked as
 *    quoted (`Attributes (quoted):`), so the only attribute block the model sees is the injected one;
 *  - token-level engines tokenize the pieces with `special: true` with special tokens on and the
 *    others (the user's text and the injected block) with them off.
 */
import { attributeBlock, ATTRIBUTE_BLOCK_KEYWORD } from '../core/prompt';

export interface PromptFormat {
  readonly id: 'chatml' | 'llama3' | 'gemma' | 'mistral' | 'phi3' | 'plain';
  /** Text before the user's content (includes any BOS marker the family writes as text). */
  readonly head: string;
  /** Text between the user's content and the response. */
  readonly tail: string;
  /** The marker that ends the assistant's turn (a stop string for generation); '' means EOS. */
  readonly end: string;
}

export const PROMPT_FORMATS: Readonly<Record<PromptFormat['id'], PromptFormat>> = {
  chatml: { id: 'chatml', head: '<|im_start|>user\n', tail: '<|im_end|>\n<|im_start|>assistant\n', end: '<|im_end|>' },
  llama3: {
    id: 'llama3',
    head: '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n',
    tail: '<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    end: '<|eot_id|>',
  },
  gemma: { id: 'gemma', head: '<bos><start_of_turn>user\n', tail: '<end_of_turn>\n<start_of_turn>model\n', end: '<end_of_turn>' },
  mistral: { id: 'mistral', head: '<s>[INST] ', tail: ' [/INST]', end: '</s>' },
  phi3: { id: 'phi3', head: '<|user|>\n', tail: '<|end|>\n<|assistant|>\n', end: '<|end|>' },
  plain: { id: 'plain', head: 'User: ', tail: '\nAssistant: ', end: '' },
};

/** Picks the format whose turn markers appear in a chat template (Jinja or Go); 'plain' if none do. */
export function detectPromptFormat(template: string | undefined): PromptFormat {
  const t = template ?? '';
  if (t.includes('<|im_start|>')) return PROMPT_FORMATS.chatml;
  if (t.includes('<|start_header_id|>')) return PROMPT_FORMATS.llama3;
  if (t.includes('<start_of_turn>')) return PROMPT_FORMATS.gemma;
  if (t.includes('[INST]')) return PROMPT_FORMATS.mistral;
  if (t.includes('<|user|>') && t.includes('<|end|>')) return PROMPT_FORMATS.phi3;
  return PROMPT_FORMATS.plain;
}

/**
 * Control markers of all the formats above (whatever the current model, text pasted from another
 * model's transcript must not act on this one): `<|name|>` (ChatML, Llama 3, Phi-3, and the
 * reserved tokens of those families), Gemma's and SentencePiece's `<bos>`-style tags, Mistral's
 * `[INST]` / `[/INST]` and Llama 2's `<<SYS>>`.
 */
const CONTROL_MARKER =
  /<\|[^|<>\s]{1,64}\|>|<\/?(?:s|bos|eos|pad|unk|start_of_turn|end_of_turn|start_of_image|end_of_image)>|\[\/?(?:INST|SYS|AVAILABLE_TOOLS|TOOL_CALLS|TOOL_RESULTS)\]|<<\/?SYS>>/giu;

/** A line of user text that would read as an attribute block (any case, leading blanks). */
const FAKE_ATTRIBUTE_LINE = new RegExp(`^([ \\t]*)(${ATTRIBUTE_BLOCK_KEYWORD.slice(0, -1)})([ \\t]*):`, 'gimu');

/** Text with every control marker broken up by a space after its first character: for responses appended to a string prompt. */
export function markerFreeText(text: string): string {
  return text.replace(CONTROL_MARKER, (m) => `${m[0]} ${m.slice(1)}`);
}

/** User text as it is put into a prompt: control markers broken up, attribute-like lines quoted. */
export function userText(text: string): string {
  return markerFreeText(text).replace(FAKE_ATTRIBUTE_LINE, '$1$2 (quoted)$3:');
}

/** One piece of a rendered prompt; `special` pieces are the format's own markers. */
export interface PromptPiece {
  readonly text: string;
  readonly special: boolean;
}

/** In the plain format the turns are marked by text alone: a user line that starts a turn is quoted too. */
const FAKE_PLAIN_TURN = /^([ \t]*)(User|Assistant)([ \t]*):/gimu;

/** head (special) + user text + attribute block (text) + tail (special); empty pieces left out. */
export function renderPromptPieces(format: PromptFormat, prompt: string, attributes: ReadonlyArray<string>): PromptPiece[] {
  const block = attributeBlock(attributes);
  const text = format.id === 'plain' ? userText(prompt).replace(FAKE_PLAIN_TURN, '$1$2 (quoted)$3:') : userText(prompt);
  const user = text + (block === '' ? '' : `\n${block}`);
  return [
    { text: format.head, special: true },
    { text: user, special: false },
    { text: format.tail, special: true },
  ].filter((p) => p.text !== '');
}

/** Everything the model sees before its response, as one string: head + x^A + tail. */
export function renderPrompt(format: PromptFormat, prompt: string, attributes: ReadonlyArray<string>): string {
  return renderPromptPieces(format, prompt, attributes)
    .map((p) => p.text)
    .join('');
}
