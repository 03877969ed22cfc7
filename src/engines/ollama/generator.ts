/**
 * Generation through Ollama in raw mode: the prompt is rendered by the project's one renderer
 * (promptFormat.ts) from the chat template Ollama reports for the model, so the text the model
 * continues is exactly the text the scorers score.
 */
import type { GeneratedText, GenerationOptions, TextGenerator } from '../../core/ports';
import { detectPromptFormat, renderPrompt, type PromptFormat } from '../promptFormat';
import type { OllamaClient } from './client';
import { PAPER_DECODING } from './config';

/** The `options` object of a generate request for the given settings (num_ctx always present). */
function ollamaDecodingOptions(
  options: GenerationOptions,
  numCtx: number,
  maxTokens: number,
  stop: ReadonlyArray<string>,
): Record<string, unknown> {
  const o: Record<string, unknown> = {
    temperature: options.temperature ?? PAPER_DECODING.temperature,
    top_k: options.topK ?? PAPER_DECODING.topK,
    top_p: options.topP ?? PAPER_DECODING.topP,
    num_predict: options.maxTokens ?? maxTokens,
    num_ctx: numCtx,
  };
  if (options.seed !== undefined) o.seed = options.seed;
  if (stop.length > 0) o.stop = [...stop];
  return o;
}

/** The prompt format of the configured model, from the chat template /api/show reports. */
async function promptFormatFromOllama(client: OllamaClient, signal?: AbortSignal): Promise<PromptFormat> {
  const info = await client.show(client.config.model, signal);
  return detectPromptFormat(info.template);
}

export class OllamaGenerator implements TextGenerator {
  private format: Promise<PromptFormat> | undefined;

  constructor(private readonly client: OllamaClient) {}

  /** The model's prompt format, detected once from the template /api/show reports. */
  promptFormat(signal?: AbortSignal): Promise<PromptFormat> {
    if (this.format === undefined) {
      const p = promptFormatFromOllama(this.client, signal);
      p.catch(() => {
        if (this.format === p) this.format = undefined; // retry on the next call
      });
      this.format = p;
    }
    return this.format;
  }

  async generate(
    prompt: string,
    attributes: ReadonlyArray<string>,
    options: GenerationOptions,
    onToken?: (text: string) => void,
    signal?: AbortSignal,
  ): Promise<GeneratedText> {
    const format = await this.promptFormat(signal);
    const { config } = this.client;
    const result = await this.client.generateStream(
      {
        model: config.model,
        prompt: renderPrompt(format, prompt, attributes),
        raw: true,
        keep_alive: config.keepAlive,
        options: ollamaDecodingOptions(options, config.numCtx, config.maxTokens, format.end === '' ? [] : [format.end]),
      },
      (chunk) => {
        if (chunk.response !== '' && onToken !== undefined) onToken(chunk.response);
      },
      signal,
    );
    return { text: result.text, stoppedAtLimit: result.doneReason === 'length' };
  }
}
