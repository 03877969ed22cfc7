/**
 * What one scored position costs in node-llama-cpp, by what is asked of it: nothing (plain
 * prefill, no logits), the sampled token, the target's and the greedy token's logits plus the
 * total logit weight (what the engine's 'logits' path reads), or the whole next-token
 * distribution (the check path). bench/perf.ts measures the engine itself against the floor.
 *
 *   node --import tsx test/support/samplingCost.ts
 */
import { pathToFileURL } from 'node:url';
import { getLlama, type ControlledEvaluateInputItem, type LlamaContextSequence, type Token } from 'node-llama-cpp';
import { randomLlamaModelPath } from './randomGguf';

/**
 * Best of `repeats` (by CPU time, which other jobs on the machine disturb less than wall time):
 * wall and CPU ms per position for evaluating `tokens` from an empty sequence, asking `ask(token)` at each.
 */
export async function bestMsPerPosition(sequence: LlamaContextSequence, tokens: ReadonlyArray<Token>, ask: (t: Token) => ControlledEvaluateInputItem, repeats = 3): Promise<{ ms: number; cpuMs: number }> {
  let best = { ms: Infinity, cpuMs: Infinity };
  for (let repeat = 0; repeat < repeats; repeat++) {
    if (sequence.nextTokenIndex > 0) await sequence.eraseContextTokenRanges([{ start: 0, end: sequence.nextTokenIndex }]);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await sequence.controlledEvaluate(tokens.map(ask));
    const ms = performance.now() - t0;
    const c = process.cpuUsage(c0);
    const cpuMs = (c.user + c.system) / 1000;
    if (cpuMs < best.cpuMs) best = { ms, cpuMs };
  }
  return { ms: best.ms / tokens.length, cpuMs: best.cpuMs / tokens.length };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const llama = await getLlama({ gpu: false, build: 'never' });
  for (const vocabSize of [1024, 32000, 128000]) {
    const model = await llama.loadModel({ modelPath: randomLlamaModelPath({ vocabSize, embeddingLength: 128 }) });
    const context = await model.createContext({ contextSize: 512, threads: 1, flashAttention: false, sequences: 1 });
    const sequence = context.getSequence();
    const tokens = Array.from({ length: 200 }, (_, i) => (((i * 7919) % (vocabSize - 400)) + 300) as Token);
    const asks: Record<string, (t: Token) => ControlledEvaluateInputItem> = {
      'prefill only': (t) => t,
      'sampled token': (t) => [t, { generateNext: { token: true } }],
      'total logit weight only': (t) => [t, { generateNext: { totalLogitWeight: true } }],
      'two logits only (filter: a token + the selected one)': (t) => [t, { generateNext: { token: true, logits: { filter: { tokens: [t], includeSelected: true } } } }],
      'two logits + total weight (the engine)': (t) => [t, { generateNext: { token: true, logits: { filter: { tokens: [t], includeSelected: true } }, totalLogitWeight: true } }],
      'full distribution': (t) => [t, { generateNext: { probabilities: true } }],
    };
    for (const [name, ask] of Object.entries(asks)) {
      const { ms, cpuMs } = await bestMsPerPosition(sequence, tokens, ask);
      console.log(`vocabulary ${vocabSize}, ${name}: ${ms.toFixed(3)} ms wall, ${cpuMs.toFixed(3)} ms CPU per position (best of 3, 200 positions)`);
    }
    await context.dispose();
    await model.dispose();
  }
}
