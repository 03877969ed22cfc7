/**
 * Checks the GGUF against PyTorch (reference.py's file, computed from the same weights) and the
 * GGUF's tokenizer against the training ids:
 *
 * 1. Exactness of the export: with an F32 KV cache, llama.cpp's next-token log-probs on the
 *    all-F32 copy of the weights (reference.py --f32-copy; the model itself when it is F32) must
 *    equal PyTorch's float32 ones: max |diff| <= 1e-4 per token.
 * 2. The file as the extension runs it (its own weights, llama.cpp's default F16 KV cache) against
 *    PyTorch in float32: mean |diff| <= 1e-3 per token, max <= 2e-2. What remains is llama.cpp's
 *    float16 arithmetic (F16 weights make it round matmul inputs to float16; the KV cache is F16).
 *    The comparison with PyTorch emulating the F16 KV cache is printed too.
 * 3. Detokenizing each conversation and tokenizing it again gives the same ids.
 *
 * Usage: npx tsx tools/train-fixture/verify.ts MODEL.gguf REF.json [--f32-copy COPY.gguf]
 * Exit code 1 on failure.
 */
import { readFileSync } from 'node:fs';
import type { Token } from 'node-llama-cpp';
import { loadFixture, tokenLogProbs, type Loaded } from './llama';

interface RefExample {
  ids: number[];
  prompt_tokens: number;
  logprobs: number[];
  logprobs_f32: number[];
}

interface Agreement {
  mean: number;
  max: number;
  tokens: number;
}

async function agreement(fx: Loaded, examples: RefExample[], key: 'logprobs' | 'logprobs_f32'): Promise<Agreement> {
  let sum = 0;
  let max = 0;
  let tokens = 0;
  for (const ex of examples) {
    const ours = await tokenLogProbs(fx.sequence, ex.ids as Token[]);
    for (const [i, lp] of ours.entries()) {
      const d = Math.abs(lp - (ex[key][i] as number));
      sum += d;
      max = Math.max(max, d);
      tokens++;
    }
  }
  return { mean: sum / tokens, max, tokens };
}

const fmt = (a: Agreement): string => `mean |diff| ${a.mean.toExponential(2)}, max ${a.max.toExponential(2)} over ${a.tokens} tokens`;

async function main(): Promise<void> {
  const [modelPath, refPath] = process.argv.slice(2);
  if (modelPath === undefined || refPath === undefined) throw new Error('usage: verify.ts MODEL.gguf REF.json [--f32-copy COPY.gguf]');
  const copyIndex = process.argv.indexOf('--f32-copy');
  const exactPath = copyIndex > 0 ? (process.argv[copyIndex + 1] as string) : modelPath;
  const examples = (JSON.parse(readFileSync(refPath, 'utf8')) as { examples: RefExample[] }).examples;
  let ok = true;

  const exact = await loadFixture(exactPath, { kvCache: 'F32' });
  const a = await agreement(exact, examples, 'logprobs_f32');
  const exactOk = a.max <= 1e-4;
  console.log(`1. F32 weights, F32 KV cache vs PyTorch float32:  ${fmt(a)}  ${exactOk ? 'OK' : 'FAILED (max > 1e-4)'}`);
  ok &&= exactOk;
  await exact.dispose();

  const fx = await loadFixture(modelPath);
  const b = await agreement(fx, examples, 'logprobs_f32');
  const defaultOk = b.mean <= 1e-3 && b.max <= 2e-2;
  console.log(`2. the file, default F16 KV cache vs PyTorch:     ${fmt(b)}  ${defaultOk ? 'OK' : 'FAILED (mean > 1e-3 or max > 2e-2)'}`);
  const c = await agreement(fx, examples, 'logprobs');
  console.log(`   (vs PyTorch emulating the F16 KV cache:        ${fmt(c)})`);
  ok &&= defaultOk;

  let retokenized = 0;
  for (const ex of examples) {
    const ids = ex.ids as Token[];
    const bos = ids[0] === fx.model.tokens.bos ? 1 : 0;
    const again = fx.model.tokenize(fx.model.detokenize(ids.slice(bos), true), true);
    if (again.length === ids.length - bos && again.every((t, i) => t === ids[i + bos])) retokenized++;
  }
  console.log(`3. detokenize + tokenize reproduces the ids:       ${retokenized}/${examples.length} conversations  ${retokenized === examples.length ? 'OK' : 'FAILED'}`);
  ok &&= retokenized === examples.length;
  await fx.dispose();
  if (!ok) process.exit(1);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
