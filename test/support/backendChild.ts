/**
 * Child-process probe for the compute-backend tests: loads the engine with `gpu: 'auto'` and
 * prints its backend and the scores of the given requests as one JSON line. A child process because
 * the environment that decides the backend (LD_LIBRARY_PATH, which the dynamic loader reads at
 * process start) must be set before node-llama-cpp looks for GPU libraries.
 *
 *   <model.gguf> <requests as JSON>
 */
import { LlamaEngine } from '../../src/engines/llama/llamaEngine';
import type { ScoreRequest } from '../../src/core';

const [modelPath, requests = '[]'] = process.argv.slice(2);

async function main(): Promise<void> {
  if (modelPath === undefined) throw new Error('usage: backendChild <model.gguf> <requests as JSON>');
  const engine = await LlamaEngine.load(modelPath, { gpu: 'auto', contextSize: 512 });
  try {
    process.stdout.write(`${JSON.stringify({ backend: engine.modelInfo.backend, scores: await engine.score(JSON.parse(requests) as ScoreRequest[]) })}\n`);
  } finally {
    await engine.dispose();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
