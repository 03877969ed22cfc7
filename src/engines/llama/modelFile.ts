/**
 * Checks a model path before llama.cpp sees it, so that each way of getting it wrong has its own
 * message saying what is wrong and what to do.
 */
import { constants } from 'node:fs';
import { access, open, stat } from 'node:fs/promises';

export type ModelFileErrorCode = 'NOT_FOUND' | 'NOT_A_FILE' | 'UNREADABLE' | 'NOT_GGUF' | 'UNSUPPORTED' | 'LOAD_FAILED';

/** A model file that cannot be used; `code` tells the kind, the message what to do. */
export class ModelFileError extends Error {
  override readonly name = 'ModelFileError';
  constructor(
    readonly code: ModelFileErrorCode,
    message: string,
    readonly path: string,
  ) {
    super(message);
  }
}

const WHAT = 'EXACT needs a GGUF model file (the format of llama.cpp; Ollama keeps one per model under its models/blobs folder).';

/** Throws a ModelFileError unless `path` is a readable file that starts with the GGUF magic. */
export async function checkModelFile(path: string): Promise<void> {
  if (path.trim() === '') throw new ModelFileError('NOT_FOUND', `No model file was given. ${WHAT} Set the path to one.`, path);
  let info;
  try {
    info = await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new ModelFileError('NOT_FOUND', `Model file not found: ${path}. Check the path (it must point at a .gguf file that exists on this machine).`, path);
    }
    throw new ModelFileError('UNREADABLE', `Cannot read the model file ${path} (${code ?? String(e)}). Check its permissions.`, path);
  }
  if (!info.isFile()) {
    throw new ModelFileError('NOT_A_FILE', `${path} is a ${info.isDirectory() ? 'folder' : 'special file'}, not a model file. Point at the .gguf file itself.`, path);
  }
  try {
    await access(path, constants.R_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new ModelFileError('UNREADABLE', `Cannot read the model file ${path} (${code}). Check its permissions (the file must be readable by the user running VS Code).`, path);
  }
  const head = Buffer.alloc(8);
  let bytesRead = 0;
  try {
    const fh = await open(path, 'r');
    try {
      ({ bytesRead } = await fh.read(head, 0, 8, 0));
    } finally {
      await fh.close();
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new ModelFileError('UNREADABLE', `Cannot read the model file ${path} (${code}). Check its permissions.`, path);
  }
  if (bytesRead < 8 || head.toString('latin1', 0, 4) !== 'GGUF') {
    const shown = bytesRead === 0 ? 'it is empty' : `it starts with ${JSON.stringify(head.toString('latin1', 0, Math.min(4, bytesRead)))}`;
    throw new ModelFileError('NOT_GGUF', `${path} is not a GGUF model file (${shown}). ${WHAT}`, path);
  }
  const version = head.readUInt32LE(4);
  if (version < 2 || version > 3) {
    throw new ModelFileError('UNSUPPORTED', `${path} is GGUF version ${version}; this llama.cpp reads versions 2 and 3. Re-convert the model with a current llama.cpp.`, path);
  }
}

/** Wraps a llama.cpp load failure with the file's architecture, when the header names one. */
export function loadFailure(path: string, architecture: string | undefined, cause: unknown): ModelFileError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  if (architecture !== undefined && /architecture|unknown model|unsupported/iu.test(reason)) {
    return new ModelFileError(
      'UNSUPPORTED',
      `${path} is a GGUF model of architecture "${architecture}", which this llama.cpp build (node-llama-cpp) cannot run (${reason}). Use a model of a supported architecture (llama, qwen2, gemma, phi3, mistral, ...) or a newer node-llama-cpp.`,
      path,
    );
  }
  return new ModelFileError(
    'LOAD_FAILED',
    `llama.cpp could not load ${path}${architecture !== undefined ? ` (architecture "${architecture}")` : ''}: ${reason}. The file may be truncated or corrupt, or of an architecture this llama.cpp build does not support; re-download or re-convert it.`,
    path,
  );
}
