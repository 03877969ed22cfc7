/**
 * What one scored position costs in node-llama-cpp, by what is asked of it (2-core numbers are
 * in the closing note of issue 5): nothing (plain prefill), the sampled token, the token and its
 * probability ("confidence", what the fast scoring path reads first), or the whole next-token
 * distribution (what the public API hands over, and the fast path reads on a miss).
 *
 *   node --import tsx test/support/samplingCost.ts
 */
import { getLlama, type ControlledEvaluateInputItem, type Token } from 'node-llama-cpp';
import { randomLlamaModelPath } from './randomGguf';

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
  for (const [name, item] of Object.entries(asks)) {
    let best = Infinity;
    for (let repeat = 0; repeat < 3; repeat++) {
      if (sequence.nextTokenIndex > 0) await sequence.eraseContextTokenRanges([{ start: 0, end: sequence.nextTokenIndex }]);
      const t0 = performance.now();
      await sequence.controlledEvaluate(tokens.map(item));
      best = Math.min(best, performance.now() - t0);
    }
    console.log(`vocabulary ${vocabSize}, ${name}: ${(best / tokens.length).toFixed(3)} ms per position (best of 3, 200 positions)`);
  }
  await context.dispose();
  await model.dispose();
}
