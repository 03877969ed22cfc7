/**
 * Reference log-probabilities computed the slow, obvious ways with node-llama-cpp directly (not
 * through LlamaEngine):
 * - stepByStep: for each position k, clear the KV cache, evaluate tokens[0..k-1] from scratch and
 *   read the next-token probability of tokens[k] (float32, as node-llama-cpp hands it over);
 * - float64: evaluate the sequence once, read every logit of every scored position and take the
 *   log-softmax in double precision in JavaScript.
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

  /** log p(tokens[k] | tokens[0..k-1]) for k = start .. tokens.length - 1: all logits, log-softmax in float64. */
  async float64(tokens: ReadonlyArray<number>, start: number): Promise<number[]> {
    const seq = this.context.getSequence();
    try {
      const items = tokens.slice(0, -1).map((t, i) => (i >= start - 1 ? ([t as Token, { generateNext: { logits: true } }] as const) : (t as Token)));
      const res = await seq.controlledEvaluate(items as Parameters<typeof seq.controlledEvaluate>[0]);
      const out: number[] = [];
      for (let k = start; k < tokens.length; k++) {
        const logits = res[k - 1]?.next.logits;
        if (logits === undefined) throw new Error(`no logits at position ${k - 1}`);
        let max = -Infinity;
        for (const l of logits.values()) if (l > max) max = l;
        let sum = 0;
        for (const l of logits.values()) sum += Math.exp(l - max);
        out.push((logits.get(tokens[k] as Token) ?? -Infinity) - max - Math.log(sum));
      }
      return out;
    } finally {
      await seq.dispose();
    }
  }

  async dispose(): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
  }
}
