/**
 * Evidence that the fixture model follows the attribute block, on held-out prompts (templates
 * or slot values never seen in training):
 *
 * 1. Follow rate: for a response y written for attribute set A, is log p(y | x, A) greater than
 *    log p(y | x, B) for another set B? (Also against the plain prompt x without a block.)
 * 2. Length: greedy and sampled answers asked to be Concise are shorter than Storyteller ones.
 * 3. Markers: how often greedy answers show each core attribute's surface form.
 *
 * Usage: npx tsx tools/train-fixture/check.ts [MODEL.gguf] [--prompts 60] [--seed 7] [--threads 2]
 */
import type { LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp';
import {
  heldOutPrompts, IM_END, makeRng, renderChatML, sampleAttributeSet, userContent, writeResponse,
} from '../attribute-world/corpus';
import { loadFixture, tokenLogProbs } from './llama';

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? (process.argv[i + 1] as string) : fallback;
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const sameSet = (a: ReadonlyArray<string>, b: ReadonlyArray<string>): boolean => a.length === b.length && a.every((x) => b.includes(x));

/** log p(response + <|im_end|> | conversation prefix) summed over the response tokens. */
async function responseLogProb(model: LlamaModel, seq: LlamaContextSequence, user: string, response: string): Promise<number> {
  const prefix = model.tokenize(renderChatML({ user }), true);
  const answer = model.tokenize(response + IM_END, true);
  const lps = await tokenLogProbs(seq, [...prefix, ...answer], prefix.length);
  return lps.reduce((a, b) => a + b, 0);
}

async function generate(model: LlamaModel, seq: LlamaContextSequence, user: string, temperature: number, seed: number): Promise<Token[]> {
  await seq.clearHistory();
  const out: Token[] = [];
  const eos = model.tokens.eos;
  for await (const token of seq.evaluate(model.tokenize(renderChatML({ user }), true), temperature > 0 ? { temperature, seed } : {})) {
    if (token === eos || out.length >= 200) break;
    out.push(token);
  }
  return out;
}

const MARKERS: Readonly<Record<string, RegExp>> = {
  Concise: /^[^.!?]*[.!?]?$/u,
  Formal: /It is advisable|I trust this is helpful/u,
  'Internet Slang': /\b(ngl|tbh|fr|lol|lmao|haha)\b/u,
  Storyteller: /my (friend|cousin|neighbor|coworker|old roommate)/iu,
  Analytic: /\(1\).*\(2\)/u,
  Empathetic: /I understand/u,
  Exclamatory: /!/u,
  Direct: /^Short answer:/u,
  Vivid: /Picture/u,
  Easy: /Easy version/iu,
  Critical: /caveat|watch the risks/u,
  Modest: /I might be wrong|I may be wrong/u,
  Proverb: /saying goes/u,
};

async function main(): Promise<void> {
  const modelPath = process.argv[2] !== undefined && !process.argv[2].startsWith('--') ? process.argv[2] : 'test/fixtures/model/exact-tiny.gguf';
  const nPrompts = Number(option('prompts', '60'));
  const seed = Number(option('seed', '7'));
  const fx = await loadFixture(modelPath, { threads: Number(option('threads', '2')) });
  const { model, sequence } = fx;
  const prompts = heldOutPrompts(seed, nPrompts);
  const rng = makeRng(seed);
  console.log(`model ${modelPath}; ${prompts.length} held-out prompts (seed ${seed})`);

  // 1. Follow rate.
  let wins = 0;
  let winsPlain = 0;
  let pairs = 0;
  const bySize = new Map<number, { wins: number; n: number }>();
  const margins: number[] = [];
  const start = Date.now();
  for (const [i, p] of prompts.entries()) {
    for (let k = 0; k < 2; k++) {
      const a = sampleAttributeSet(rng);
      let b = sampleAttributeSet(rng);
      while (sameSet(a, b)) b = sampleAttributeSet(rng);
      const y = writeResponse(p, a, seed * 1000 + i * 10 + k);
      const lpA = await responseLogProb(model, sequence, userContent(p.text, a), y);
      const lpB = await responseLogProb(model, sequence, userContent(p.text, b), y);
      const lpPlain = await responseLogProb(model, sequence, p.text, y);
      pairs++;
      if (lpA > lpB) wins++;
      if (lpA > lpPlain) winsPlain++;
      margins.push(lpA - lpB);
      const s = bySize.get(a.length) ?? { wins: 0, n: 0 };
      s.n++;
      if (lpA > lpB) s.wins++;
      bySize.set(a.length, s);
    }
  }
  const sorted = [...margins].sort((x, y) => x - y);
  console.log('\n1. Follow rate: log p(y_A | x, A) > log p(y_A | x, B), y_A written for A, B another random set');
  console.log(`   rate ${(100 * wins / pairs).toFixed(1)}% of ${pairs} pairs; median margin ${(sorted[Math.floor(sorted.length / 2)] as number).toFixed(2)} nats`);
  for (const [size, s] of [...bySize.entries()].sort((x, y) => x[0] - y[0])) console.log(`   |A| = ${size}: ${(100 * s.wins / s.n).toFixed(1)}% of ${s.n}`);
  console.log(`   vs the plain prompt (no block): log p(y_A | x, A) > log p(y_A | x) in ${(100 * winsPlain / pairs).toFixed(1)}%`);
  console.log(`   (${((Date.now() - start) / (pairs * 3)).toFixed(0)} ms per scored response)`);

  // 2. Lengths.
  const lengthPrompts = prompts.slice(0, Math.min(30, prompts.length));
  console.log(`\n2. Response length in tokens (without <|im_end|>) on ${lengthPrompts.length} held-out prompts`);
  const lengths: Record<string, { greedy: number[]; sampled: number[] }> = {};
  const examples: string[] = [];
  for (const attrs of [['Concise'], [], ['Storyteller']]) {
    const key = attrs.length === 0 ? '(none)' : (attrs[0] as string);
    const l = { greedy: [] as number[], sampled: [] as number[] };
    for (const [i, p] of lengthPrompts.entries()) {
      const greedy = await generate(model, sequence, userContent(p.text, attrs), 0, 0);
      const sampled = await generate(model, sequence, userContent(p.text, attrs), 0.8, seed + i);
      l.greedy.push(greedy.length);
      l.sampled.push(sampled.length);
      if (i === 0) examples.push(`   [${key}] ${p.text}\n     -> ${model.detokenize(greedy)}`);
    }
    lengths[key] = l;
    console.log(`   ${key.padEnd(12)} greedy mean ${mean(l.greedy).toFixed(1)}   sampled (T=0.8) mean ${mean(l.sampled).toFixed(1)}`);
  }
  const c = lengths.Concise as { greedy: number[]; sampled: number[] };
  const st = lengths.Storyteller as { greedy: number[]; sampled: number[] };
  const shorter = c.greedy.filter((n, i) => n < (st.greedy[i] as number)).length;
  console.log(`   Concise shorter than Storyteller (greedy, same prompt) in ${shorter}/${c.greedy.length}`);
  console.log(examples.join('\n'));

  // 3. Markers in greedy answers.
  console.log('\n3. Surface markers in greedy answers, attribute alone vs no block (held-out prompts)');
  const markerPrompts = prompts.slice(0, Math.min(24, prompts.length));
  const plain: string[] = [];
  for (const p of markerPrompts) plain.push(model.detokenize(await generate(model, sequence, p.text, 0, 0)));
  for (const [attr, re] of Object.entries(MARKERS)) {
    let hits = 0;
    for (const p of markerPrompts) if (re.test(model.detokenize(await generate(model, sequence, userContent(p.text, [attr]), 0, 0)))) hits++;
    const base = plain.filter((t) => re.test(t)).length;
    console.log(`   ${attr.padEnd(15)} ${String(hits).padStart(2)}/${markerPrompts.length} with the block, ${String(base).padStart(2)}/${markerPrompts.length} without`);
  }
  await fx.dispose();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
