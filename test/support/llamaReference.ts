/**
 * Reference log-probabilities computed the slow, obvious way with node-llama-cpp directly (not
 * through LlamaEngine): for each position k, clear the KV cache, evaluate tokens[0..k-1] from
 * scratch and read the next-token probability of tokens[k].
 */
import type { LlamaContext, LlamaModel, Token } from 'node-llama-cpp';
import { llamaRuntime } from '../../src/engines/llama/llamaEngine';

export class PrefixReference {
  private constructor(
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
  ) {}

  static async load(modelPath: string, contextSize = 512): Promise<PrefixReference> {
    // The engine's runtime (same binary), but nothing of LlamaEngine's scoring code.
    const llama = await llamaRuntime(false);
    const model = await llama.loadModel({ modelPath, gpuLayers: 0, defaultContextFlashAttention: false });
    const context = await model.createContext({ contextSize, flashAttention: false, threads: 1 });
    return new PrefixReference(model, context);
  }

  /** log p(tokens[k] | tokens[0..k-1]) for k = start .. tokens.length - 1. */
  async stepByStep(tokens: ReadonlyArray<number>, start: number): Promise<number[]> {
    const out: number[] = [];
    for (let k = start; k < tokens.length; k++) {
      const seq = this.context.getSequence();
      try {
        const items = tokens.slice(0, k).map((t, i) => (i === k - 1 ? ([t as Token, { generateNext: { probabilities: true } }] as const) : (t as Token)));
        const res = await seq.controlledEvaluate(items as Parameters<typeof seq.controlledEvaluate>[0]);
        const p = res[k - 1]?.next.probabilities?.get(tokens[k] as Token) ?? 0;
        out.push(Math.log(p));
      } finally {
        await seq.dispose();
      }
    }
    return out;
  }

  async dispose(): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
  }
}
