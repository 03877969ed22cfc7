/**
 * Durable file primitives: atomic replace (temp file + fsync + rename + directory fsync) and a
 * vectra FileStorage whose upsertFile uses it, so vectra's index.json is never half-written.
 */
import { promises as fs } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import type { FileDetails, FileStorage, ListFilesFilter } from 'vectra';

/** fsync a directory so a rename or create inside it survives a power loss (no-op where unsupported, e.g. Windows). */
export async function fsyncDirectory(dir: string): Promise<void> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(dir, 'r');
    await handle.sync();
  } catch {
    // Directories cannot be opened or synced on some platforms; the rename is still atomic there.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

function isRetryableRenameError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'EPERM' || code === 'EACCES' || code === 'EBUSY';
}

/** A unique sibling path for a temporary file (same directory, so rename stays atomic). */
function tempPathFor(target: string): string {
  return `${target}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
}

/**
 * Replaces `target` with `content` atomically: readers see the old file or the new one, never a
 * mix, and after the promise resolves the new content is on disk.
 */
export async function writeFileAtomic(target: string, content: string | Uint8Array): Promise<void> {
  const tmp = tempPathFor(target);
  const handle = await fs.open(tmp, 'wx', 0o600);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } catch (err) {
    await handle.close().catch(() => undefined);
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await fs.rename(tmp, target);
        break;
      } catch (err) {
        // Windows refuses to replace a file another process has open for a moment.
        if (attempt >= 20 || !isRetryableRenameError(err)) throw err;
        await new Promise((r) => setTimeout(r, 10 + attempt * 10));
      }
    }
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await fsyncDirectory(path.dirname(target));
}

/** Removes temp files that a crashed writer left next to `dir`'s files. */
export async function removeStaleTempFiles(dir: string, olderThanMs = 60_000): Promise<number> {
  let removed = 0;
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return 0;
  }
  const now = Date.now();
  for (const name of names) {
    if (!/\.tmp-\d+-[0-9a-f]{12}$/.test(name)) continue;
    const full = path.join(dir, name);
    try {
      const st = await fs.stat(full);
      if (now - st.mtimeMs > olderThanMs) {
        await fs.rm(full, { force: true });
        removed++;
      }
    } catch {
      // Someone else removed or renamed it meanwhile.
    }
  }
  return removed;
}

/**
 * vectra's LocalFileStorage writes index.json with a plain truncate-and-write; this one replaces
 * files atomically. Paths are used as given (absolute), like LocalFileStorage without a root.
 */
export class AtomicFileStorage implements FileStorage {
  async createFile(filePath: string, content: Buffer | string): Promise<void> {
    const handle = await fs.open(filePath, 'wx', 0o600);
    try {
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsyncDirectory(path.dirname(filePath));
  }

  async createFolder(folderPath: string): Promise<void> {
    await fs.mkdir(folderPath, { recursive: true });
  }

  async deleteFile(filePath: string): Promise<void> {
    await fs.rm(filePath, { force: true });
  }

  async deleteFolder(folderPath: string): Promise<void> {
    await fs.rm(folderPath, { recursive: true, force: true });
  }

  async getDetails(fileOrFolderPath: string): Promise<FileDetails> {
    const st = await fs.stat(fileOrFolderPath);
    return { name: path.basename(fileOrFolderPath), path: fileOrFolderPath, isFolder: st.isDirectory() };
  }

  async listFiles(folderPath: string, filter: ListFilesFilter = 'all'): Promise<FileDetails[]> {
    const entries = await fs.readdir(folderPath, { withFileTypes: true });
    return entries
      .filter((e) => filter === 'all' || (filter === 'folders') === e.isDirectory())
      .map((e) => ({ name: e.name, path: path.join(folderPath, e.name), isFolder: e.isDirectory() }));
  }

  async pathExists(fileOrFolderPath: string): Promise<boolean> {
    try {
      await fs.access(fileOrFolderPath);
      return true;
    } catch {
      return false;
    }
  }

  async readFile(filePath: string): Promise<Buffer> {
    return fs.readFile(filePath);
  }

  async upsertFile(filePath: string, content: Buffer | string): Promise<void> {
    await writeFileAtomic(filePath, content);
  }
}
