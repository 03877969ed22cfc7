/**
 * worker_threads entry that owns one LlamaEngine, so that scoring and generation never block the
 * extension host's thread. The model loads on the first request and unloads on `release`.
 * Bundled to dist/scorerWorker.mjs by scripts/build.mjs.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { abortError } from '../../core/ports';
import { LlamaEngine } from './llamaEngine';
import { serializeError, type FromWorker, type ToWorker, type WorkerCalls, type WorkerInit, type WorkerRequest } from './protocol';

const port = parentPort;
if (port === null) throw new Error('scorerWorker must run as a worker thread (new Worker(...)).');
const init = workerData as WorkerInit;

let engine: Promise<LlamaEngine> | undefined;
let loadMilliseconds = 0;
let loads = 0;
const running = new Map<number, AbortController>();

function getEngine(): Promise<LlamaEngine> {
  if (engine === undefined) {
    const t0 = performance.now();
    const p = LlamaEngine.load(init.modelPath, init.options);
    engine = p;
    p.then(
      (e) => {
        loadMilliseconds = performance.now() - t0;
        loads += 1;
        send({ type: 'loaded', backend: e.modelInfo.backend, loadMilliseconds });
      },
      () => {
        if (engine === p) engine = undefined; // let a later request try again
      },
    );
  }
  return engine;
}

function send(message: FromWorker): void {
  port!.postMessage(message);
}

async function handle(request: WorkerRequest, signal: AbortSignal): Promise<WorkerCalls[WorkerRequest['type']]['result']> {
  switch (request.type) {
    case 'score':
      return (await getEngine()).score(request.requests, signal);
    case 'scoreDetailed':
      return (await getEngine()).scoreDetailed(request.requests, signal);
    case 'generate':
      return (await getEngine()).generate(request.input, request.options, (chunk) => send({ type: 'chunk', id: request.id, chunk }), signal);
    case 'embed':
      return (await getEngine()).embed(request.texts, signal);
    case 'tokenize':
      return (await getEngine()).tokenize(request.text, request.specialTokens);
    case 'info': {
      const e = await getEngine();
      return { info: e.modelInfo, stats: e.scoreStats, memory: await e.memoryUsage(), loadMilliseconds, loads };
    }
    case 'release': {
      const current = engine;
      engine = undefined;
      if (current === undefined) return { released: false };
      const e = await current.catch(() => undefined);
      await e?.dispose();
      return { released: e !== undefined };
    }
  }
}

port.on('message', (message: ToWorker) => {
  if (message.type === 'cancel') {
    running.get(message.id)?.abort();
    return;
  }
  const controller = new AbortController();
  running.set(message.id, controller);
  handle(message, controller.signal).then(
    (value) => send({ type: 'result', id: message.id, value }),
    (e: unknown) => send({ type: 'error', id: message.id, error: serializeError(controller.signal.aborted ? abortError() : e) }),
  ).finally(() => running.delete(message.id));
});
