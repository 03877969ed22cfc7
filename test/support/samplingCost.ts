/**
 * What one scored position costs in node-llama-cpp, by what is asked of it (2-core numbers are
 * in the closing note of issue 5): nothing (plain prefill), the sampled token, the token and its
 * probability ("confidence", what the fast scoring path reads first), or the whole next-token
 * distribution (what the public API hands over, and the fast path reads on a miss).
 *
 *   node --import tsx test/support/samplingCost.ts
 *
 * bench/perf.ts uses bestMsPerPosition for what a greedy hit costs.
 */
import { pathToFileURL } from 'node:url';
import { getLlama, type ControlledEvaluateInputItem, type LlamaContextSequence, type Token } from 'node-llama-cpp';
import { randomLlamaModelPath } from './randomGguf';

/** Best of `repeats`: ms per position for evaluating `tokens` from an empty sequence, asking `ask(token)` at each. */
export async function bestMsPerPosition(sequence: LlamaContextSequence, tokens: ReadonlyArray<Token>, ask: (t: Token) => ControlledEvaluateInputItem, repeats = 3): Promise<number> {
  let best = Infinity;
  for (let repeat = 0; repeat < repeats; repeat++) {
    if (sequence.nextTokenIndex > 0) await sequence.eraseContextTokenRanges([{ start: 0, end: sequence.nextTokenIndex }]);
    const t0 = performance.now();
    await sequence.controlledEvaluate(tokens.map(ask));
    best = Math.min(best, performance.now() - t0);
  }
  return best / tokens.length;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const llama = await getLlama({ gpu: false, build: 'never' });
  for (const vocabSize of [1024, 32000]) {
    const model = await llama.loadModel({ modelPath: randomLlamaModelPath({ vocabSize, embeddingLength: 128 }) });
    const context = await model.createContext({ contextSize: 512, threads: 1, flashAttention: false, sequences: 1 });
    const sequence = context.getSequence();
    const tokens = Array.from({ length: 200 }, (_, i) => (((i * 7919) % (vocabSize - 400)) + 300) as Token);
    const asks: Record<string, (t: Token) => ControlledEvaluateInputItem> = {
      'prefill only': (t) => t,
      'sampled token': (t) => [t, { generateNext: { token: true } }],
      'token + confidence': (t) => [t, { generateNext: { token: true, confidence: true } }],
      'full distribution': (t) => [t, { generateNext: { probabilities: true } }],
    };
    for (const [name, ask] of Object.entries(asks)) {
      const ms = await bestMsPerPosition(sequence, tokens, ask);
      console.log(`vocabulary ${vocabSize}, ${name}: ${ms.toFixed(3)} ms per position (best of 3, 200 positions)`);
    }
    await context.dispose();
    await model.dispose();
  }
}
