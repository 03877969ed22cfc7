/**
 * A cross-process advisory lock: an exclusive lock file holding its owner (pid, host, token).
 *
 * - Creation is atomic: the owner record is written to a temp file and hard-linked into place
 *   (link fails with EEXIST when someone holds the lock), so a lock file is never half-written.
 *   Where hard links are unsupported it falls back to open(O_CREAT|O_EXCL).
 * - The holder touches the file every `heartbeatMs`. A lock is stale when its pid is dead (same
 *   host), or when it has not been touched for `staleMs` (other host, reused pid, hung holder).
 * - Breaking a stale lock is itself guarded by a short-lived breaker file, and re-checks that the
 *   lock is still the same stale one before removing it.
 * - Not reentrant: one handle per acquisition. Callers in one process serialize themselves.
 */
import { promises as fs } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import { abortError, sleep } from '../core/ports';

export interface FileLockOptions {
  /** How long acquire() waits before giving up (default 10 s). */
  readonly timeoutMs?: number;
  /** A lock not refreshed for this long is stale even if its pid looks alive (default 30 s). */
  readonly staleMs?: number;
  /** How often the holder refreshes the lock file's mtime (default staleMs / 3). */
  readonly heartbeatMs?: number;
  /** First and largest wait between attempts (defaults 5 ms and 200 ms). */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  /** Shown to a waiting process ("memory", "indexing"). */
  readonly purpose?: string;
}

export interface LockOwner {
  readonly pid: number;
  readonly hostname: string;
  readonly token: string;
  readonly acquiredAt: string;
  readonly purpose?: string;
}

export class LockTimeoutError extends Error {
  constructor(
    readonly lockPath: string,
    readonly holder: LockOwner | undefined,
  ) {
    super(
      `Timed out waiting for the lock ${lockPath}` +
        (holder ? ` (held by pid ${holder.pid} on ${holder.hostname} since ${holder.acquiredAt}).` : '.'),
    );
    this.name = 'LockTimeoutError';
  }
}

class LockLostError extends Error {
  constructor(lockPath: string) {
    super(`The lock ${lockPath} was taken over by another process (it was considered stale).`);
    this.name = 'LockLostError';
  }
}

/** True when a process with this pid exists (EPERM: it exists but belongs to someone else). */
function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parseOwner(raw: string): LockOwner | undefined {
  try {
    const v = JSON.parse(raw) as Partial<LockOwner>;
    if (typeof v.pid === 'number' && typeof v.hostname === 'string' && typeof v.token === 'string' && typeof v.acquiredAt === 'string') {
      return v as LockOwner;
    }
  } catch {
    // fall through
  }
  return undefined;
}

/** An unparseable lock file (a crash in the O_EXCL fallback) is stale after this grace period. */
const GARBAGE_GRACE_MS = 2_000;
const BREAKER_STALE_MS = 10_000;

export class LockHandle {
  private timer: NodeJS.Timeout | undefined;
  private released = false;
  private lostFlag = false;

  constructor(
    readonly path: string,
    readonly owner: LockOwner,
    heartbeatMs: number,
  ) {
    this.timer = setInterval(() => void this.heartbeat(), heartbeatMs);
    this.timer.unref();
  }

  /** True once another process broke this lock as stale (we then must not write). */
  get lost(): boolean {
    return this.lostFlag;
  }

  private async heartbeat(): Promise<void> {
    if (this.released) return;
    if (!(await this.stillOurs())) {
      this.lostFlag = true;
      this.stopHeartbeat();
      return;
    }
    const now = new Date();
    await fs.utimes(this.path, now, now).catch(() => undefined);
  }

  private async stillOurs(): Promise<boolean> {
    try {
      return parseOwner(await fs.readFile(this.path, 'utf8'))?.token === this.owner.token;
    } catch {
      return false;
    }
  }

  private stopHeartbeat(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Throws LockLostError when the lock file no longer names us; call before a critical write. */
  async assertHeld(): Promise<void> {
    if (this.released || this.lostFlag || !(await this.stillOurs())) {
      this.lostFlag = !this.released;
      throw new LockLostError(this.path);
    }
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.stopHeartbeat();
    if (await this.stillOurs()) await fs.rm(this.path, { force: true });
    else this.lostFlag = true;
  }
}

export class FileLock {
  private swept = false;
  private readonly timeoutMs: number;
  private readonly staleMs: number;
  private readonly heartbeatMs: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;

  constructor(
    readonly path: string,
    private readonly options: FileLockOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.staleMs = options.staleMs ?? 30_000;
    this.heartbeatMs = options.heartbeatMs ?? Math.max(50, Math.floor(this.staleMs / 3));
    this.retryMinMs = options.retryMinMs ?? 5;
    this.retryMaxMs = options.retryMaxMs ?? 200;
  }

  /** The current holder, if the lock file exists and is readable. */
  async readHolder(): Promise<LockOwner | undefined> {
    try {
      return parseOwner(await fs.readFile(this.path, 'utf8'));
    } catch {
      return undefined;
    }
  }

  /** One attempt: the handle, or undefined when a live process holds the lock. */
  async tryAcquire(): Promise<LockHandle | undefined> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const owner: LockOwner = {
        pid: process.pid,
        hostname: os.hostname(),
        token: randomBytes(12).toString('hex'),
        acquiredAt: new Date().toISOString(),
        ...(this.options.purpose !== undefined ? { purpose: this.options.purpose } : {}),
      };
      if (await this.create(owner)) {
        if (!this.swept) {
          this.swept = true;
          await this.sweepLeftovers(owner.token);
        }
        return new LockHandle(this.path, owner, this.heartbeatMs);
      }
      if (!(await this.breakIfStale())) return undefined;
      this.swept = false; // a holder died: its temp file may be left too
    }
    return undefined;
  }

  async acquire(signal?: AbortSignal): Promise<LockHandle> {
    const deadline = Date.now() + this.timeoutMs;
    let wait = this.retryMinMs;
    for (;;) {
      if (signal?.aborted) throw abortError();
      const handle = await this.tryAcquire();
      if (handle !== undefined) return handle;
      if (Date.now() >= deadline) throw new LockTimeoutError(this.path, await this.readHolder());
      await sleep(Math.min(wait, Math.max(1, deadline - Date.now())) * (0.5 + Math.random() / 2), signal);
      wait = Math.min(this.retryMaxMs, wait * 2);
    }
  }

  async withLock<T>(fn: (handle: LockHandle) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const handle = await this.acquire(signal);
    try {
      return await fn(handle);
    } finally {
      await handle.release();
    }
  }

  /**
   * Removes the temp files (`<lock>.<token>.new`) of creators killed between writing and
   * removing them (kill -9): those of dead processes on this host, and any older than staleMs.
   */
  private async sweepLeftovers(ownToken: string): Promise<void> {
    const dir = path.dirname(this.path);
    const prefix = `${path.basename(this.path)}.`;
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (!name.startsWith(prefix) || !name.endsWith('.new') || name === `${prefix}${ownToken}.new`) continue;
      const file = path.join(dir, name);
      try {
        const [raw, stat] = await Promise.all([fs.readFile(file, 'utf8'), fs.stat(file)]);
        const owner = parseOwner(raw);
        const dead = owner !== undefined && owner.hostname === os.hostname() && !isProcessAlive(owner.pid);
        if (dead || Date.now() - stat.mtimeMs > Math.max(this.staleMs, GARBAGE_GRACE_MS)) await fs.rm(file, { force: true });
      } catch {
        // Gone already, or not ours to read.
      }
    }
  }

  /** Creates the lock file atomically; false when it already exists. */
  private async create(owner: LockOwner): Promise<boolean> {
    const content = JSON.stringify(owner);
    const tmp = `${this.path}.${owner.token}.new`;
    try {
      await fs.writeFile(tmp, content, { flag: 'wx', mode: 0o600 });
      try {
        await fs.link(tmp, this.path);
        return true;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') return false;
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
      }
      // No hard links on this file system: fall back to O_EXCL.
      try {
        const handle = await fs.open(this.path, 'wx', 0o600);
        try {
          await handle.writeFile(content);
        } finally {
          await handle.close();
        }
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw err;
      }
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }

  private async isStale(raw: string, mtimeMs: number): Promise<boolean> {
    const age = Date.now() - mtimeMs;
    const owner = parseOwner(raw);
    if (owner === undefined) return age > GARBAGE_GRACE_MS;
    if (owner.hostname === os.hostname() && !isProcessAlive(owner.pid)) return true;
    return age > this.staleMs;
  }

  /** Removes the lock when it is stale; true when the caller should try to create it again. */
  private async breakIfStale(): Promise<boolean> {
    let raw: string;
    let mtimeMs: number;
    try {
      raw = await fs.readFile(this.path, 'utf8');
      mtimeMs = (await fs.stat(this.path)).mtimeMs;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ENOENT';
    }
    if (!(await this.isStale(raw, mtimeMs))) return false;
    const breaker = `${this.path}.break`;
    try {
      await fs.writeFile(breaker, String(process.pid), { flag: 'wx', mode: 0o600 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // Another process is breaking it. A breaker left by a crash expires quickly.
      try {
        if (Date.now() - (await fs.stat(breaker)).mtimeMs > BREAKER_STALE_MS) await fs.rm(breaker, { force: true });
      } catch {
        // gone already
      }
      return false;
    }
    try {
      // Re-check under the breaker: it must still be the same stale lock.
      let again: string;
      let againMtime: number;
      try {
        again = await fs.readFile(this.path, 'utf8');
        againMtime = (await fs.stat(this.path)).mtimeMs;
      } catch (err) {
        return (err as NodeJS.ErrnoException).code === 'ENOENT';
      }
      if (again !== raw || !(await this.isStale(again, againMtime))) return false;
      await fs.rm(this.path, { force: true });
      return true;
    } finally {
      await fs.rm(breaker, { force: true });
    }
  }
}
