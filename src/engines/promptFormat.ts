/**
 * The one prompt renderer. Scoring (llama.cpp, teacher-forced) and generation (Ollama in raw
 * mode, or llama.cpp) both render a single user turn through here, so they see the same text:
 *
 *   render(x, A) = head + buildAttributedPrompt(x, A) + tail      (the model then writes y + end)
 *
 * The format is chosen from the model's own chat template (the GGUF `tokenizer.chat_template`
 * Jinja text, or the template Ollama's /api/show reports) by recognising its turn markers.
 */
import { buildAttributedPrompt } from '../core/prompt';

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

/** Everything the model sees before its response: head + x^A + tail. */
export function renderPrompt(format: PromptFormat, prompt: string, attributes: ReadonlyArray<string>): string {
  return format.head + buildAttributedPrompt(prompt, attributes) + format.tail;
}
