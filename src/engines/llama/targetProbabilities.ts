/**
 * Reading p(target | everything before) at the scored positions of one llama.cpp sequence.
 *
 * node-llama-cpp's public API (`controlledEvaluate` with `probabilities: true`) hands each
 * position's whole next-token distribution to JavaScript: 2 x vocabulary values across N-API and
 * a Map per position. That, not the model, is what scoring costs: on 2 cores, per position,
 * 0.47 ms against 0.04 ms of plain evaluation at a 1k vocabulary, 16 ms against 0.03 ms at 32k
 * (`node --import tsx test/support/samplingCost.ts`).
 *
 * The 'fast' path asks llama.cpp first for the greedy token and its probability, which the addon
 * computes with the same float32 softmax, over the same sorted candidates, as the distribution
 * it would otherwise hand over. When the greedy token is the target (most positions of a
 * response the model finds likely), that probability is the answer; otherwise it reads the
 * distribution as the flat array the addon returns and picks the target out of it, without
 * building a Map. Both reads see the logits of the same decode, so the numbers are the ones the
 * public path gives (test/integration/fixture-model.test.ts and llama-engine.test.ts compare them
 * token by token).
 *
 * The fast path reaches into node-llama-cpp 3.21's internals (the sequence's batch decoder and
 * the addon's sampleToken), which is why the version is pinned. `fastTargetReader` checks that
 * every piece is there and returns undefined otherwise; the engine then uses the public path.
 */
import type { ControlledEvaluateInputItem, LlamaContext, LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp';

/** 'fast': greedy token first, distribution only when it misses; 'distribution': public API only. */
export type ProbabilityPath = 'fast' | 'distribution';

export interface TargetReads {
  /** Per fed token: the probability of `targets[i]` after it, or undefined where none was asked. */
  readonly probabilities: Array<number | undefined>;
  /** Positions answered by the greedy token alone (fast path). */
  readonly greedyHits: number;
}

export interface TargetReader {
  readonly path: ProbabilityPath;
  /**
   * Feeds `tokens` to the sequence (after what it already holds) and reads, at each i with
   * `targets[i]` defined, the probability that the token after tokens[i] is targets[i].
   */
  read(tokens: ReadonlyArray<number>, targets: ReadonlyArray<number | undefined>): Promise<TargetReads>;
  dispose(): void;
}

/** The public path: every scored position's distribution as a Map. */
export function distributionReader(sequence: LlamaContextSequence): TargetReader {
  return {
    path: 'distribution',
    async read(tokens, targets) {
      const items: ControlledEvaluateInputItem[] = tokens.map((t, i) => (targets[i] !== undefined ? [t as Token, { generateNext: { probabilities: true } }] : (t as Token)));
      const out = await sequence.controlledEvaluate(items);
      const probabilities = targets.map((target, i) => {
        if (target === undefined) return undefined;
        const distribution = out[i]?.next.probabilities;
        if (distribution === undefined) throw new Error(`llama.cpp returned no distribution at position ${i} of the call.`);
        return distribution.get(target as Token) ?? 0;
      });
      return { probabilities, greedyHits: 0 };
    },
    dispose() {},
  };
}

type SampleResult = [token: number, flatDistribution: number[] | undefined, confidence: number | undefined];

interface AddonSampler {
  applyConfig(config: unknown): void;
  dispose(): void;
}

interface SequenceInternals {
  _decodeTokens(
    tokens: Token[],
    logits: boolean[],
    evaluationPriority: number,
    tokenMeter: unknown,
    contextShiftOptions: unknown,
    logitDataMapper: (batchLogitIndex: number, tokenIndex: number) => Promise<unknown>,
    afterBatchAction?: unknown,
  ): Promise<unknown>;
  _resolveSamplerConfig(options: Record<string, never>): unknown;
  _tokenMeter: unknown;
  _contextShift: unknown;
  _takeIntervalCheckpointIfNeededAfterBatch?: unknown;
}

interface ContextInternals {
  _ctx: { sampleToken(batchLogitIndex: number, sampler: AddonSampler, probabilities: boolean, confidence: boolean): Promise<SampleResult> };
}

interface ModelInternals {
  _model: unknown;
  _llama: { _bindings: { AddonSampler: new (model: unknown) => AddonSampler } };
}

// node-llama-cpp's default evaluation priority (controlledEvaluate uses the same).
const EVALUATION_PRIORITY = 5;

/** The fast path, or undefined when this node-llama-cpp does not have the internals it needs. */
export function fastTargetReader(model: LlamaModel, context: LlamaContext, sequence: LlamaContextSequence): TargetReader | undefined {
  const seq = sequence as unknown as Partial<SequenceInternals>;
  const ctx = (context as unknown as Partial<ContextInternals>)._ctx;
  const m = model as unknown as Partial<ModelInternals>;
  const SamplerClass = m._llama?._bindings?.AddonSampler;
  if (
    typeof seq._decodeTokens !== 'function' ||
    typeof seq._resolveSamplerConfig !== 'function' ||
    typeof ctx?.sampleToken !== 'function' ||
    typeof SamplerClass !== 'function' ||
    m._model === undefined
  ) {
    return undefined;
  }
  const internals = seq as SequenceInternals;
  const sampleToken = ctx.sampleToken.bind(ctx);
  // The public path's default configuration: greedy, no repeat penalty (it needs penalty tokens),
  // no bias. Nothing in it keeps state between tokens, so one sampler serves every call.
  const sampler = new SamplerClass(m._model);
  sampler.applyConfig(internals._resolveSamplerConfig({}));
  let disposed = false;

  async function probabilityOf(batchLogitIndex: number, target: number): Promise<{ p: number; hit: boolean }> {
    const [greedy, , confidence] = await sampleToken(batchLogitIndex, sampler, false, true);
    if (greedy === target && confidence !== undefined) return { p: confidence, hit: true };
    const [, flat] = await sampleToken(batchLogitIndex, sampler, true, false);
    if (flat === undefined) throw new Error('llama.cpp returned no distribution.');
    for (let i = 0; i < flat.length; i += 2) if (flat[i] === target) return { p: flat[i + 1]!, hit: false };
    return { p: 0, hit: false };
  }

  return {
    path: 'fast',
    async read(tokens, targets) {
      if (disposed) throw new Error('The target reader is disposed.');
      const probabilities: Array<number | undefined> = new Array(tokens.length).fill(undefined);
      const logits = targets.map((t) => t !== undefined);
      let greedyHits = 0;
      let failure: unknown;
      await internals._decodeTokens(
        tokens as Token[],
        logits,
        EVALUATION_PRIORITY,
        internals._tokenMeter,
        internals._contextShift,
        async (batchLogitIndex, tokenIndex) => {
          const target = targets[tokenIndex];
          if (target === undefined || failure !== undefined) return undefined;
          try {
            const { p, hit } = await probabilityOf(batchLogitIndex, target);
            probabilities[tokenIndex] = p;
            if (hit) greedyHits++;
          } catch (e) {
            failure = e;
          }
          return undefined;
        },
        internals._takeIntervalCheckpointIfNeededAfterBatch,
      );
      if (failure !== undefined) throw failure;
      targets.forEach((t, i) => {
        if (t !== undefined && probabilities[i] === undefined) throw new Error(`llama.cpp returned no distribution at position ${i} of the call.`);
      });
      return { probabilities, greedyHits };
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      sampler.dispose();
    },
  };
}
