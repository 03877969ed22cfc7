/**
 * An append-only JSON-lines file: the durable source of truth.
 *
 * - Appends (always under the caller's cross-process lock) write whole lines with O_APPEND and
 *   fdatasync before resolving.
 * - A torn last line (a writer died mid-append) is ignored by readers, and repaired by the next
 *   appender: completed with '\n' when it is a whole valid record, else truncated away. Lines
 *   before it are never touched.
 * - Reading is incremental: a reader remembers its byte offset and the header line, and re-reads
 *   from the start only when the file was replaced (reset) or shrank.
 */
import { promises as fs } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { fsyncDirectory, writeFileAtomic } from './atomicFile';
import { checkRecord, LOG_SCHEMA_VERSION, type HeaderRecord, type LogRecord } from './records';

export interface JsonlLogDebug {
  /** Test hook: write each append in pieces of this many bytes... */
  readonly appendChunkBytes?: number;
  /** ...pausing this long between pieces, so a test can kill the process mid-append. */
  readonly appendChunkDelayMs?: number;
  /** Test hook: called after the first piece of an append is on disk. */
  readonly onPartialAppend?: () => void;
  /** Test hook: an append fails like a full disk (ENOSPC) once this many of its bytes are written. */
  readonly failAfterBytes?: number;
}

export interface LogReadResult {
  /** True when the file was replaced or shrank: previously read records no longer apply. */
  readonly reset: boolean;
  readonly records: LogRecord[];
  /** Lines that are not JSON or fail validation (never expected; skipped). */
  readonly invalidLines: number;
  /** Records of a newer schema version or unknown type (skipped). */
  readonly unsupportedRecords: number;
  /** Bytes after the last newline: a torn or in-progress append, not yet read. */
  readonly tornTailBytes: number;
}

export interface AppendResult {
  readonly bytes: number;
  /** What was found after the last newline before this append. */
  readonly repair: 'none' | 'completed' | 'truncated';
  readonly repairedBytes: number;
}

const NL = 0x0a;
const HEADER_PROBE_BYTES = 512;

function newHeader(): HeaderRecord & { logId: string } {
  return {
    v: LOG_SCHEMA_VERSION,
    type: 'header',
    format: 'exact-preference-log',
    createdAt: new Date().toISOString(),
    logId: randomBytes(8).toString('hex'),
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export class JsonlLog {
  private offset = 0;
  private identity: { dev: number; ino: number } | undefined;
  private headerLine: Buffer | undefined;

  constructor(
    readonly path: string,
    private readonly debug: JsonlLogDebug = {},
  ) {}

  async exists(): Promise<boolean> {
    try {
      await fs.access(this.path);
      return true;
    } catch {
      return false;
    }
  }

  /** Size, inode and mtime: cheap way to see whether anything changed. */
  async fingerprint(): Promise<string> {
    try {
      const st = await fs.stat(this.path);
      return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      return 'missing';
    }
  }

  /** Reads the records appended since the last call (all of them the first time). */
  async readNew(): Promise<LogReadResult> {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      const reset = this.identity !== undefined;
      this.forget();
      return { reset, records: [], invalidLines: 0, unsupportedRecords: 0, tornTailBytes: 0 };
    }
    try {
      const st = await handle.stat();
      let reset = false;
      if (this.identity !== undefined) {
        const sameFile = st.dev === this.identity.dev && st.ino === this.identity.ino && st.size >= this.offset;
        if (!sameFile || !(await this.sameHeader(handle))) {
          reset = true;
          this.forget();
        }
      }
      this.identity = { dev: st.dev, ino: st.ino };
      const length = st.size - this.offset;
      if (length <= 0) return { reset, records: [], invalidLines: 0, unsupportedRecords: 0, tornTailBytes: 0 };
      const buf = Buffer.alloc(length);
      let read = 0;
      while (read < length) {
        const { bytesRead } = await handle.read(buf, read, length - read, this.offset + read);
        if (bytesRead === 0) break;
        read += bytesRead;
      }
      const data = buf.subarray(0, read);
      const lastNl = data.lastIndexOf(NL);
      const complete = lastNl < 0 ? Buffer.alloc(0) : data.subarray(0, lastNl + 1);
      const parsed = this.parse(complete);
      if (this.offset === 0 && lastNl >= 0) this.headerLine = Buffer.from(data.subarray(0, data.indexOf(NL) + 1));
      this.offset += complete.length;
      return { reset, ...parsed, tornTailBytes: data.length - complete.length };
    } finally {
      await handle.close();
    }
  }

  /** Start over on the next read. */
  forget(): void {
    this.offset = 0;
    this.identity = undefined;
    this.headerLine = undefined;
  }

  private async sameHeader(handle: fs.FileHandle): Promise<boolean> {
    if (this.headerLine === undefined) return true;
    const probe = Buffer.alloc(Math.min(this.headerLine.length, HEADER_PROBE_BYTES));
    const { bytesRead } = await handle.read(probe, 0, probe.length, 0);
    return bytesRead === probe.length && probe.equals(this.headerLine.subarray(0, probe.length));
  }

  private parse(complete: Buffer): Omit<LogReadResult, 'reset' | 'tornTailBytes'> {
    const records: LogRecord[] = [];
    let invalidLines = 0;
    let unsupportedRecords = 0;
    let start = 0;
    while (start < complete.length) {
      const end = complete.indexOf(NL, start);
      const line = complete.toString('utf8', start, end);
      start = end + 1;
      if (line.trim().length === 0) continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        invalidLines++;
        continue;
      }
      const check = checkRecord(value);
      if ('record' in check) records.push(check.record);
      else if ('unsupported' in check) unsupportedRecords++;
      else invalidLines++;
    }
    return { records, invalidLines, unsupportedRecords };
  }

  /**
   * Appends records durably. The caller must hold the cross-process lock: the tail repair
   * and the append must not interleave with another writer's.
   */
  async append(records: ReadonlyArray<LogRecord>): Promise<AppendResult> {
    if (!(await this.exists())) await this.create();
    const payload = Buffer.from(records.map((r) => JSON.stringify(r) + '\n').join(''), 'utf8');
    const handle = await fs.open(this.path, 'a+');
    try {
      const { repair, repairedBytes, empty } = await this.repairTail(handle);
      const body = empty ? Buffer.concat([Buffer.from(JSON.stringify(newHeader()) + '\n'), payload]) : payload;
      const before = (await handle.stat()).size;
      try {
        await this.write(handle, body);
        await handle.datasync();
      } catch (err) {
        // All or nothing: complete lines of a failed append would otherwise count (the caller
        // holds the log lock, so nothing else was appended after `before`).
        await handle.truncate(before).catch(() => undefined);
        await handle.datasync().catch(() => undefined);
        throw err;
      }
      return { bytes: body.length, repair, repairedBytes };
    } finally {
      await handle.close();
    }
  }

  /** Replaces the whole log atomically (reset, compaction). A new header starts it. */
  async replace(records: ReadonlyArray<LogRecord>): Promise<void> {
    const lines = [newHeader(), ...records].map((r) => JSON.stringify(r) + '\n').join('');
    await fs.mkdir(path.dirname(this.path), { recursive: true });
    await writeFileAtomic(this.path, lines);
  }

  private async create(): Promise<void> {
    await fs.mkdir(path.dirname(this.path), { recursive: true });
    await fsyncDirectory(path.dirname(path.dirname(this.path)));
    await writeFileAtomic(this.path, JSON.stringify(newHeader()) + '\n');
  }

  private async write(handle: fs.FileHandle, body: Buffer): Promise<void> {
    const failAt = this.debug.failAfterBytes;
    if (failAt !== undefined && failAt < body.length) {
      await handle.write(body, 0, failAt);
      throw Object.assign(new Error('ENOSPC: no space left on device, write (test hook)'), { code: 'ENOSPC' });
    }
    const chunk = this.debug.appendChunkBytes;
    if (chunk === undefined || chunk <= 0 || chunk >= body.length) {
      let written = 0;
      while (written < body.length) written += (await handle.write(body, written, body.length - written)).bytesWritten;
      return;
    }
    for (let at = 0; at < body.length; at += chunk) {
      const piece = body.subarray(at, Math.min(body.length, at + chunk));
      let written = 0;
      while (written < piece.length) written += (await handle.write(piece, written, piece.length - written)).bytesWritten;
      if (at === 0) {
        await handle.datasync();
        this.debug.onPartialAppend?.();
      }
      if (this.debug.appendChunkDelayMs !== undefined) await sleep(this.debug.appendChunkDelayMs);
    }
  }

  /** Makes the file end with '\n' (or be empty) without touching complete lines. */
  private async repairTail(handle: fs.FileHandle): Promise<{ repair: AppendResult['repair']; repairedBytes: number; empty: boolean }> {
    const size = (await handle.stat()).size;
    if (size === 0) return { repair: 'none', repairedBytes: 0, empty: true };
    const last = Buffer.alloc(1);
    await handle.read(last, 0, 1, size - 1);
    if (last[0] === NL) return { repair: 'none', repairedBytes: 0, empty: false };
    // Find the last newline, reading backwards in blocks.
    const block = 65_536;
    let lastNl = -1;
    for (let end = size; end > 0 && lastNl < 0; end -= block) {
      const start = Math.max(0, end - block);
      const buf = Buffer.alloc(end - start);
      await handle.read(buf, 0, buf.length, start);
      const i = buf.lastIndexOf(NL);
      if (i >= 0) lastNl = start + i;
    }
    const fragmentStart = lastNl + 1;
    const fragment = Buffer.alloc(size - fragmentStart);
    await handle.read(fragment, 0, fragment.length, fragmentStart);
    let whole = false;
    try {
      whole = 'record' in checkRecord(JSON.parse(fragment.toString('utf8')));
    } catch {
      whole = false;
    }
    if (whole) {
      await this.write(handle, Buffer.from('\n'));
      return { repair: 'completed', repairedBytes: fragment.length, empty: false };
    }
    await handle.truncate(fragmentStart);
    return { repair: 'truncated', repairedBytes: fragment.length, empty: fragmentStart === 0 };
  }
}
