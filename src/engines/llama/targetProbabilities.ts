/**
 * Reading log p(target | everything before) at the scored positions of one llama.cpp sequence,
 * through node-llama-cpp's public `controlledEvaluate` only.
 *
 * The 'logits' path (the default) asks, at each scored position, for three things llama.cpp
 * computes in one pass over the vocabulary, without sorting it and without handing the
 * vocabulary to JavaScript: the logit of the target, the logit of the selected token (the default
 * sampler is greedy, so that is the largest logit) and the total logit weight
 * W = sum over the vocabulary of exp(l - l_max). Then, in double precision,
 *
 *     log p(target) = l_target - l_max - ln W
 *
 * which stays finite however unlikely the target is (reading probabilities instead turns
 * everything below about e^-103 into 0 in float32). Only a target whose logit is -Infinity, a
 * token the model rules out entirely, comes out as -Infinity. W itself is a float32 sum, which is
 * where this differs from a float64 softmax of the same logits (see the README's "Exactness").
 *
 * The 'distribution' path reads each position's whole next-token distribution (probabilities
 * as float32, a Map per position). It is far slower with a real vocabulary and underflows, and
 * stays as an independent check in the tests.
 */
import type { ControlledEvaluateInputItem, ControlledEvaluateIndexOutput, LlamaContextSequence, Token } from 'node-llama-cpp';

/** 'logits': target and greedy logits plus the total weight; 'distribution': the whole distribution (for checks). */
export type ProbabilityPath = 'logits' | 'distribution';

export interface TargetReads {
  /** Per fed token: log p(targets[i] | everything up to tokens[i]), or undefined where none was asked. */
  readonly logProbabilities: Array<number | undefined>;
  /** Positions whose target was the model's greedy (argmax) token. */
  readonly greedyHits: number;
}

export interface TargetReader {
  readonly path: ProbabilityPath;
  /**
   * Feeds `tokens` to the sequence (after what it already holds) and reads, at each i with
   * `targets[i]` defined, the log-probability that the token after tokens[i] is targets[i].
   */
  read(tokens: ReadonlyArray<number>, targets: ReadonlyArray<number | undefined>): Promise<TargetReads>;
}

/**
 * log p(target) from its logit, the largest logit and W = sum exp(l - maxLogit), in double
 * precision. -Infinity only when the target's logit is -Infinity.
 */
export function logProbabilityFromLogits(targetLogit: number, maxLogit: number, totalLogitWeight: number): number {
  if (Number.isNaN(targetLogit) || Number.isNaN(maxLogit) || !(totalLogitWeight >= 1) || !Number.isFinite(totalLogitWeight) || !Number.isFinite(maxLogit)) {
    throw new Error(
      `llama.cpp returned unusable logits (target ${targetLogit}, largest ${maxLogit}, total weight ${totalLogitWeight}); the model file may be damaged or its weights overflow.`,
    );
  }
  if (targetLogit > maxLogit) throw new Error(`The target's logit ${targetLogit} is above the largest logit ${maxLogit}: the sampler did not select the argmax.`);
  return targetLogit - maxLogit - Math.log(totalLogitWeight);
}

function missing(i: number, what: string): Error {
  return new Error(`llama.cpp returned no ${what} at position ${i} of the call.`);
}

/** The default path: two logits and the total weight per scored position. */
export function logitReader(sequence: LlamaContextSequence): TargetReader {
  return {
    path: 'logits',
    async read(tokens, targets) {
      const items: ControlledEvaluateInputItem[] = tokens.map((t, i) => {
        const target = targets[i];
        if (target === undefined) return t as Token;
        // Default sampling options: temperature 0, i.e. llama.cpp's greedy sampler, which selects
        // the argmax; `token: true` only reports which token that was.
        return [t as Token, { generateNext: { token: true, logits: { filter: { tokens: [target as Token], includeSelected: true } }, totalLogitWeight: true } }];
      });
      const out = await sequence.controlledEvaluate(items);
      let greedyHits = 0;
      const logProbabilities = targets.map((target, i) => {
        if (target === undefined) return undefined;
        const next: ControlledEvaluateIndexOutput['next'] | undefined = out[i]?.next;
        const selected = next?.token;
        if (selected === undefined || selected === null) throw missing(i, 'selected token');
        const maxLogit = next?.logits?.get(selected);
        const targetLogit = next?.logits?.get(target as Token);
        if (maxLogit === undefined || targetLogit === undefined) throw missing(i, 'logits');
        if (next?.totalLogitWeight === undefined) throw missing(i, 'total logit weight');
        if (selected === target) greedyHits++;
        return logProbabilityFromLogits(targetLogit, maxLogit, next.totalLogitWeight);
      });
      return { logProbabilities, greedyHits };
    },
  };
}

/** The check path: every scored position's whole distribution as a Map (float32 probabilities). */
export function distributionReader(sequence: LlamaContextSequence): TargetReader {
  return {
    path: 'distribution',
    async read(tokens, targets) {
      const items: ControlledEvaluateInputItem[] = tokens.map((t, i) => (targets[i] !== undefined ? [t as Token, { generateNext: { probabilities: true } }] : (t as Token)));
      const out = await sequence.controlledEvaluate(items);
      const logProbabilities = targets.map((target, i) => {
        if (target === undefined) return undefined;
        const distribution = out[i]?.next.probabilities;
        if (distribution === undefined) throw missing(i, 'distribution');
        // Below about e^-103 a float32 probability is 0: log gives -Infinity.
        return Math.log(distribution.get(target as Token) ?? 0);
      });
      return { logProbabilities, greedyHits: 0 };
    },
  };
}
