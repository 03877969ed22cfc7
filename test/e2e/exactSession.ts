/**
 * What every EXACT scenario needs: the extension packaged as a .vsix, the fixture model behind the
 * project's Ollama-compatible test server, a scratch workspace, and code-server + chromium with
 * the extension installed and pointed at that server.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Frame } from 'playwright-core';
import { LlamaEngine } from '../../src/engines/llama/llamaEngine';
import { LOG_FILE } from '../../src/storage/preferenceMemory';
import { OllamaTestServer, testModelPath } from '../support/ollamaServer';
import { VllmTestServer } from '../support/vllmServer';
import { REPO_ROOT, missingPrerequisites, startSession, type Session, type Workbench } from './harness';

const missing = missingPrerequisites();
const mustRun = process.env.CI === 'true' || process.env.EXACT_E2E === '1';
/** node:test's `skip` for a scenario: only where the prerequisites are missing and CI does not demand it. */
export const skipUnlessReady: string | false =
  missing.length > 0 && !mustRun ? `e2e prerequisites missing (${missing.join(', ')}); run bash test/e2e/setup-vscode-server.sh` : false;

export interface ExactSession {
  readonly engine: LlamaEngine;
  readonly ollama: OllamaTestServer;
  /** The vLLM-compatible test server on the same engine, when the session was started with `vllm`. */
  readonly vllm: VllmTestServer | undefined;
  readonly session: Session;
  readonly wb: Workbench;
  readonly workspace: string;
  /** The drafts view's webview frame (found again each time: VS Code may recreate it). */
  drafts(): Promise<Frame>;
  /** The drafts view's status line. */
  statusText(frame: Frame): Promise<string>;
  /** The pairs recorded in this workspace's preference log, in order (deleted ones included). */
  recordedPairs(): Array<{ id: string; prompt: string; chosen: string; rejected: string }>;
  /** The learned selections in the same log, with the scorer that made them and its call count. */
  recordedSelections(): Array<{ pairId: string; algorithm: string; attributes: string[]; scorer: { kind: string; calls: number } }>;
  /** The extension's "EXACT" output channel as code-server logged it (for failure reports). */
  extensionLog(): string;
  close(): Promise<void>;
}

export async function startExactSession(opts: { files: Record<string, string>; screenshotPrefix: string; settings?: Record<string, unknown>; vllm?: boolean }): Promise<ExactSession> {
  execFileSync(process.execPath, ['scripts/package.mjs'], { cwd: REPO_ROOT, stdio: 'inherit' });
  const vsix = path.join(REPO_ROOT, 'dist-vsix', `exact-vscode-${process.platform}-${process.arch}.vsix`);
  const model = testModelPath();
  console.log(`model: ${model.kind} ${model.path}`);
  const engine = await LlamaEngine.load(model.path, { threads: 1 });
  const ollama = await OllamaTestServer.start({ engine, model: 'exact-tiny:latest' });
  const vllm = opts.vllm === true ? await VllmTestServer.start({ engine }) : undefined;
  const vllmSettings = vllm === undefined ? {} : { 'exact.backend': 'vllm', 'exact.vllm.url': vllm.url, 'exact.vllm.model': vllm.model };
  const workspace = mkdtempSync(path.join(os.tmpdir(), 'exact-e2e-ws-'));
  for (const [name, text] of Object.entries(opts.files)) writeFileSync(path.join(workspace, name), text);
  let session: Session;
  try {
    session = await startSession({
      vsix,
      workspace,
      screenshotPrefix: opts.screenshotPrefix,
      settings: { 'exact.ollama.host': ollama.url, 'exact.ollama.model': 'exact-tiny', 'exact.generation.maxTokens': 60, ...vllmSettings, ...opts.settings },
    });
  } catch (e) {
    await vllm?.close();
    await ollama.close();
    await engine.dispose();
    rmSync(workspace, { recursive: true, force: true });
    throw e;
  }
  const wb = session.workbench;
  const userDataDir = session.server.userDataDir;
  return {
    engine,
    ollama,
    vllm,
    session,
    wb,
    workspace,
    drafts: () => wb.webviewFrame('exact.drafts', { timeoutMs: 60_000 }),
    statusText: async (frame) => (await frame.locator('#status').innerText()).trim(),
    recordedPairs() {
      return records(userDataDir, 'pair');
    },
    recordedSelections() {
      return records(userDataDir, 'selection');
    },
    extensionLog() {
      const log = findFile(path.join(userDataDir, 'logs'), (name) => /EXACT\.log$/u.test(name));
      return log === undefined ? '(no EXACT log found)' : readFileSync(log, 'utf8');
    },
    async close() {
      await session.close();
      await vllm?.close();
      await ollama.close();
      await engine.dispose();
      rmSync(workspace, { recursive: true, force: true });
    },
  };
}

function findFile(dir: string, matches: (name: string) => boolean): string | undefined {
  if (!existsSync(dir)) return undefined;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isFile() && matches(entry.name)) return p;
    if (entry.isDirectory()) {
      const found = findFile(p, matches);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/** The memory log's records of one type (the log of the one workspace the session opened). */
function records<T>(userDataDir: string, type: 'pair' | 'selection'): T[] {
  const log = findFile(path.join(userDataDir, 'User', 'workspaceStorage'), (name) => name === LOG_FILE);
  if (log === undefined) return [];
  return readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .map((l) => JSON.parse(l) as T & { type: string })
    .filter((r) => r.type === type);
}
