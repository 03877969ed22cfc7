/**
 * Tokenizes the training corpus with llama.cpp itself (through node-llama-cpp), so the ids we
 * train on are exactly the ids the GGUF's tokenizer produces at inference time.
 *
 * Usage: npx tsx tools/train-fixture/tokenize.ts MODEL.gguf CORPUS.jsonl OUT.jsonl
 * Each output line is {"p": [prompt ids], "r": [response ids]}: p is the ChatML prefix up to and
 * including `<|im_start|>assistant\n` (with a leading BOS when the example asks for one), r is
 * the response followed by `<|im_end|>`. The loss goes on r.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { getLlama, type LlamaModel, type Token } from 'node-llama-cpp';
import { IM_END, renderChatML } from '../attribute-world/corpus';

interface Row {
  user: string;
  assistant: string;
  system?: string;
  bos: boolean;
}

export function tokenizeExample(model: LlamaModel, row: Row): { p: Token[]; r: Token[] } {
  const prefix = renderChatML({ user: row.user, ...(row.system !== undefined ? { system: row.system } : {}) });
  const bos = model.tokens.bos;
  if (row.bos && bos === null) throw new Error('model has no BOS token');
  const p = [...(row.bos ? [bos as Token] : []), ...model.tokenize(prefix, true)];
  const r = model.tokenize(row.assistant + IM_END, true);
  const whole = model.tokenize(prefix + row.assistant + IM_END, true);
  const joined = [...p.slice(row.bos ? 1 : 0), ...r];
  if (whole.length !== joined.length || whole.some((t, i) => t !== joined[i])) {
    throw new Error(`prefix and response do not tokenize independently: ${JSON.stringify(row)}`);
  }
  return { p, r };
}

async function main(): Promise<void> {
  const [modelPath, corpusPath, outPath] = process.argv.slice(2);
  if (modelPath === undefined || corpusPath === undefined || outPath === undefined) {
    throw new Error('usage: tokenize.ts MODEL.gguf CORPUS.jsonl OUT.jsonl');
  }
  const llama = await getLlama({ gpu: false, build: 'never' });
  const model = await llama.loadModel({ modelPath, gpuLayers: 0, vocabOnly: true });
  const out = createWriteStream(outPath);
  let examples = 0;
  let promptTokens = 0;
  let responseTokens = 0;
  let maxLength = 0;
  let byteFallbacks = 0;
  const vocab = (model.fileInfo.metadata as unknown as { tokenizer?: { ggml?: { tokens?: string[] } } }).tokenizer?.ggml?.tokens ?? [];
  const byteTokens = new Set(vocab.flatMap((text, id) => (/^<0x[0-9A-F]{2}>$/u.test(text) ? [id] : [])));
  for await (const line of createInterface({ input: createReadStream(corpusPath) })) {
    if (line.trim() === '') continue;
    const row = JSON.parse(line) as Row;
    const { p, r } = tokenizeExample(model, row);
    if (examples < 3 && model.detokenize(r, true) !== row.assistant + IM_END) throw new Error(`round trip failed: ${row.assistant}`);
    byteFallbacks += [...p, ...r].filter((t) => byteTokens.has(t)).length;
    out.write(`${JSON.stringify({ p, r })}\n`);
    examples++;
    promptTokens += p.length;
    responseTokens += r.length;
    maxLength = Math.max(maxLength, p.length + r.length);
  }
  await new Promise<void>((resolve) => out.end(resolve));
  console.log(
    `tokenized ${examples} examples: mean prompt ${(promptTokens / examples).toFixed(1)} tokens, ` +
      `mean response ${(responseTokens / examples).toFixed(1)} tokens, max sequence ${maxLength}, byte fallbacks ${byteFallbacks}`,
  );
  await model.dispose();
  await llama.dispose();
}

if (process.argv[1] !== undefined && /tokenize\.ts$/u.test(process.argv[1])) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
