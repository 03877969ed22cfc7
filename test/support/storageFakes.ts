/**
 * Deterministic fakes of the core ports for storage and indexing tests, plus temp-folder and
 * child-process helpers.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { abortError, greedySelect, type Embedder, type LogLikelihoodScorer, type ScoreRequest, type SelectionResult } from '../../src/core';
import { sleep } from '../../src/core/ports';

/** A number in [-1, 1) fixed by the text. */
export function hashUnit(text: string): number {
  const h = createHash('sha256').update(text).digest();
  return h.readUInt32LE(0) / 2 ** 31 - 1;
}

export interface FakeOptions {
  /** Delay per call, honouring the abort signal. */
  readonly delayMs?: number;
  /** Called before each call with the 0-based call index and the prompts involved; a returned error is thrown. */
  readonly failOn?: (call: number, prompts: ReadonlyArray<string>) => Error | undefined;
  /** Calls for which this returns true wait until their signal aborts (they never finish on their own). */
  readonly hangOn?: (prompts: ReadonlyArray<string>) => boolean;
}

/**
 * log p(response | prompt, A) = sum over a in A of w(prompt, response, a), with w a fixed hash
 * in [-1, 1). J(A) is then modular, so greedy selection is exactly optimal and deterministic.
 */
export class HashScorer implements LogLikelihoodScorer {
  calls = 0;
  requests = 0;
  /** Calls that ended because their signal aborted while they ran. */
  aborted = 0;
  constructor(private readonly options: FakeOptions = {}) {}

  async scoreBatch(requests: ReadonlyArray<ScoreRequest>, signal?: AbortSignal): Promise<number[]> {
    const call = this.calls++;
    const prompts = [...new Set(requests.map((r) => r.prompt))];
    const err = this.options.failOn?.(call, prompts);
    const hang = this.options.hangOn?.(prompts) === true;
    try {
      if (hang || (this.options.delayMs !== undefined && this.options.delayMs > 0)) await sleep(hang ? 2 ** 31 - 1 : this.options.delayMs!, signal);
      else if (signal?.aborted) throw abortError();
    } catch (e) {
      this.aborted++;
      throw e;
    }
    if (err !== undefined) throw err;
    this.requests += requests.length;
    return requests.map((r) => r.attributes.reduce((s, a) => s + hashUnit(`${r.prompt}\u0000${r.response}\u0000${a}`), 0));
  }
}

/** Feature-hashing bag of words: deterministic, similar prompts get similar vectors. */
export class HashEmbedder implements Embedder {
  calls = 0;
  constructor(
    readonly id = 'fake-embed',
    readonly dims = 16,
    private readonly options: FakeOptions = {},
  ) {}

  vector(text: string): number[] {
    const v = new Array<number>(this.dims).fill(0);
    for (const word of text.toLowerCase().split(/\W+/).filter(Boolean)) {
      const h = createHash('sha256').update(word).digest();
      v[h.readUInt32LE(0) % this.dims]! += h[4]! & 1 ? 1 : -1;
    }
    return v;
  }

  async embed(texts: ReadonlyArray<string>, signal?: AbortSignal): Promise<number[][]> {
    const call = this.calls++;
    const err = this.options.failOn?.(call, texts);
    if (this.options.delayMs !== undefined && this.options.delayMs > 0) await sleep(this.options.delayMs, signal);
    else if (signal?.aborted) throw abortError();
    if (err !== undefined) throw err;
    return texts.map((t) => this.vector(t));
  }
}

export const TEST_LIBRARY = ['Concise', 'Formal', 'Vivid', 'Direct', 'Humor', 'Analytic'];

export const MODELS = { model: 'fake-scorer-1', embeddingModel: 'fake-embed' };

/** The selection a HashScorer gives, computed directly with the core. */
export function expectedSelection(pair: { prompt: string; chosen: string; rejected: string }, k = 2): Promise<SelectionResult> {
  return greedySelect(new HashScorer(), pair, TEST_LIBRARY, { k });
}

export function testPair(i: number, tag = 't'): { prompt: string; chosen: string; rejected: string; id: string } {
  return {
    id: `${tag}-${i}`,
    prompt: `Question ${i} from ${tag}: how should I write about topic ${i % 7}?`,
    chosen: `Chosen answer ${i} (${tag}).`,
    rejected: `Rejected answer ${i} (${tag}).`,
  };
}

export async function tempFolder(prefix = 'exact-storage-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..');

/** Starts a TypeScript test-support script in a child Node process (via tsx). */
export function spawnTs(script: string, args: ReadonlyArray<string>): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, script), ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export interface ChildResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Collects a child's output; `onLine` sees each stdout line as it arrives. */
export function collect(child: ChildProcess, onLine?: (line: string) => void): Promise<ChildResult> {
  let stdout = '';
  let stderr = '';
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const l of lines) onLine?.(l);
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}
