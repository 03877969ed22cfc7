/**
 * Messages between the extension host and its webviews. Both sides import these types; the host
 * validates every incoming message with `parseWebviewMessage` before acting on it.
 */

export type WebviewToHost = { type: 'ready' };

export type HostToWebview = { type: 'notice'; text: string };

const MAX_TEXT = 200_000;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function isBoundedString(v: unknown, max = MAX_TEXT): v is string {
  return typeof v === 'string' && v.length <= max;
}

/** Returns the message if it is one the host understands, else undefined (it is then ignored). */
export function parseWebviewMessage(raw: unknown): WebviewToHost | undefined {
  if (!isRecord(raw) || typeof raw.type !== 'string') return undefined;
  switch (raw.type) {
    case 'ready':
      return { type: 'ready' };
    default:
      return undefined;
  }
}
