/**
 * Small node-llama-cpp helpers shared by verify.ts and check.ts: loading the fixture on the CPU
 * with explicit threads and flash attention off, and teacher-forced log-probs.
 */
import { getLlama, type Llama, type LlamaContext, type LlamaContextSequence, type LlamaModel, type Token } from 'node-llama-cpp';

export interface Loaded {
  llama: Llama;
  model: LlamaModel;
  context: LlamaContext;
  sequence: LlamaContextSequence;
  dispose(): Promise<void>;
}

export interface FixtureOptions {
  threads?: number;
  contextSize?: number;
  /** KV cache precision; llama.cpp's default (and the extension's) is F16. */
  kvCache?: 'F16' | 'F32';
}

export async function loadFixture(modelPath: string, options: FixtureOptions = {}): Promise<Loaded> {
  const { threads = 2, contextSize = 1024, kvCache = 'F16' } = options;
  const llama = await getLlama({ gpu: false, build: 'never' });
  const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
  const context = await model.createContext({
    contextSize,
    threads,
    flashAttention: false,
    sequences: 1,
    experimentalKvCacheKeyType: kvCache,
    experimentalKvCacheValueType: kvCache,
  });
  const sequence = context.getSequence();
  return {
    llama,
    model,
    context,
    sequence,
    async dispose() {
      await context.dispose();
      await model.dispose();
      await llama.dispose();
    },
  };
}

/** log p(ids[i+1] | ids[..i]) for every i >= from - 1, i.e. the log-probs of ids[from..]. */
export async function tokenLogProbs(sequence: LlamaContextSequence, ids: ReadonlyArray<Token>, from = 1): Promise<number[]> {
  await sequence.clearHistory();
  const items = ids.map((t, i) => (i >= from - 1 && i < ids.length - 1 ? ([t, { generateNext: { probabilities: true } }] as const) : t));
  const results = await sequence.controlledEvaluate(items as Parameters<LlamaContextSequence['controlledEvaluate']>[0]);
  const out: number[] = [];
  for (let i = Math.max(from - 1, 0); i < ids.length - 1; i++) {
    const p = results[i]?.next.probabilities?.get(ids[i + 1] as Token) ?? 0;
    out.push(Math.max(Math.log(p), -103));
  }
  return out;
}
