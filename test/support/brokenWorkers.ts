/**
 * Stand-ins for the scorer worker that fail the way a real one can, for LlamaScorer's crash
 * handling: `mode` in workerData picks how.
 *   exit:  the thread exits (code 7) on its first request, like a worker killed mid-run;
 *   throw: an uncaught exception on the first request;
 *   silent-then-exit: answers nothing and exits after 200 ms.
 */
import { parentPort, workerData } from 'node:worker_threads';

const mode = (workerData as { options?: { mode?: string } }).options?.mode ?? 'exit';

parentPort!.on('message', () => {
  if (mode === 'exit') process.exit(7);
  if (mode === 'throw') throw new Error('boom in the worker');
  setTimeout(() => process.exit(0), 200);
});
