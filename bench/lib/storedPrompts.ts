/** Synthetic stored prompts for the storage and retrieval benchmarks. */
import { encodeEmbedding } from '../../src/storage/records';
import { makePrompt, makeRng, TOPICS, type Topic } from '../../tools/attribute-world/corpus';

const ATTRIBUTES = ['Concise', 'Formal', 'Vivid', 'Humor', 'Storyteller', 'Direct', 'Empathetic'];

/** n distinct prompts from the attribute world (seed 4242), cycling through the topics. */
export function distinctPrompts(n: number): string[] {
  const rng = makeRng(4242);
  const seen = new Set<string>();
  for (let i = 0; seen.size < n; i++) {
    let text = makePrompt(rng, TOPICS[i % TOPICS.length] as Topic, 'train').text;
    if (seen.has(text)) text = `${text} (variant ${i})`;
    seen.add(text);
  }
  return [...seen];
}

/** An export file holding one learned selection per prompt (3 of 7 attributes each), for importData. */
export function learnedExport(prompts: ReadonlyArray<string>, vectors: ReadonlyArray<ReadonlyArray<number>>, models: { model: string; embeddingModel: string }) {
  const createdAt = new Date().toISOString();
  return {
    format: 'exact-preferences',
    version: 1,
    exportedAt: createdAt,
    pairs: prompts.map((prompt, i) => ({
      id: `p-${i}`,
      prompt,
      chosen: `chosen ${i}`,
      rejected: `rejected ${i}`,
      source: 'bench',
      createdAt,
      override: null,
      selections: [
        {
          id: `s-${i}`,
          attributes: [ATTRIBUTES[i % 7]!, ATTRIBUTES[(i + 2) % 7]!, ATTRIBUTES[(i + 4) % 7]!],
          objective: 2,
          baseObjective: 1,
          gain: 1,
          steps: [],
          ...models,
          scorer: { kind: 'bench', calls: 1, scoredSequences: 2, objectiveEvaluations: 1 },
          algorithm: 'greedy',
          k: 3,
          durationMs: 1,
          createdAt,
          embedding: encodeEmbedding(vectors[i]!),
        },
      ],
    })),
  };
}
