/**
 * Messages between the extension host and its two webviews (the drafts view and the profile
 * panel). Both sides import these types; the host validates every incoming message with
 * `parseWebviewMessage` before acting on it, and ignores anything else.
 */

export type DraftSlot = 'A' | 'B';

export interface DraftInfo {
  readonly slot: DraftSlot;
  readonly attributes: string[];
  /** Why these attributes: e.g. "from your prompt 'plan a trip…' (similarity 0.82)" or "exploring". */
  readonly why: string;
}

/** Where the host's current drafts stand, sent when a drafts view (re)loads: generation may have streamed on while it was hidden. */
export interface DraftsSnapshot {
  readonly requestId: string;
  readonly prompt: string;
  readonly drafts: DraftInfo[];
  readonly texts: Partial<Record<DraftSlot, string>>;
  readonly done: DraftSlot[];
  /** Slots whose generation ran into the token limit. */
  readonly cut: DraftSlot[];
  readonly running: boolean;
  readonly stopped: boolean;
  /** The user's edits of each draft (open: still in its edit box), kept by the host too so a window reload cannot lose them. */
  readonly edits?: Partial<Record<DraftSlot, DraftEdit>>;
}

export interface DraftEdit {
  readonly text: string;
  readonly open: boolean;
}

export interface QueueState {
  readonly pending: number;
  readonly running: boolean;
  readonly learned: number;
  readonly lastError?: string;
}

export interface ProfileEntry {
  readonly pairId: string;
  readonly prompt: string;
  readonly attributes: string[];
  readonly gain: number;
  readonly objective: number;
  readonly model: string;
  readonly embeddingModel: string;
  readonly createdAt: string;
  readonly edited: boolean;
  /** Why retrieval never returns this entry; absent when it can. */
  readonly unusedBecause?: string;
}

export interface ProfileData {
  readonly frequencies: { attribute: string; count: number; share: number }[];
  readonly modes: { label: string; size: number; attributes: { attribute: string; count: number }[] }[];
  readonly entries: ProfileEntry[];
  /** Leave-one-out over every analysed choice; harmed: injections that narrowed the gap. */
  readonly accuracy: { accuracy: number; improved: number; harmed: number; total: number } | null;
  readonly accuracyNote: string;
  readonly library: { name: string; description: string; custom: boolean }[];
  readonly pending: number;
  readonly needsReindex: boolean;
  readonly model: string;
  /** Which scorer learns and why (the scorer selection's reason); '' until it is known. */
  readonly scorer: string;
  /** Which scorer runs and on what (CPU / GPU), and why; empty before learning first started. */
  readonly scoring: string;
  /** Choices whose analysis failed (with why), waiting for a later try or "Retry failed". */
  readonly failed: { pairId: string; error: string }[];
}

export type HostToWebview =
  | { type: 'init'; prompt: string; trusted: boolean; queue: QueueState; current?: DraftsSnapshot }
  | { type: 'prefill'; prompt: string }
  | { type: 'draftsStarted'; requestId: string; prompt: string; drafts: DraftInfo[] }
  | { type: 'draftToken'; requestId: string; slot: DraftSlot; text: string }
  | { type: 'draftDone'; requestId: string; slot: DraftSlot; text: string; stoppedAtLimit?: boolean }
  | { type: 'draftsFinished'; requestId: string; stopped: boolean }
  | { type: 'draftsFailed'; requestId: string; message: string }
  | { type: 'choiceSaved'; requestId: string; pairId: string }
  | { type: 'choiceFailed'; requestId: string; message: string }
  | { type: 'queue'; queue: QueueState }
  | { type: 'notice'; text: string; level: 'info' | 'warning' | 'error' }
  | { type: 'profile'; data: ProfileData };

export type WebviewToHost =
  | { type: 'ready' }
  | { type: 'generate'; prompt: string }
  | { type: 'stop' }
  | { type: 'choose'; requestId: string; preferred: DraftSlot; preferredText: string; rejectedText: string }
  | { type: 'skip'; requestId: string }
  | { type: 'keepEdits'; requestId: string; edits: Partial<Record<DraftSlot, DraftEdit>> }
  | { type: 'insert'; text: string }
  | { type: 'openProfile' }
  | { type: 'openSideBySide' }
  | { type: 'refresh' }
  | { type: 'deleteEntry'; pairId: string }
  | { type: 'editAttributes'; pairId: string; attributes: string[] }
  | { type: 'addCustomAttribute'; name: string }
  | { type: 'removeCustomAttribute'; name: string }
  | { type: 'exportData' }
  | { type: 'importData' }
  | { type: 'reindex' }
  | { type: 'retryFailed' }
  | { type: 'reset' };

/** Upper bound for any text a webview may send (prompts, drafts); the host applies its own size setting too. */
export const MAX_MESSAGE_TEXT = 200_000;
const MAX_ID = 200;
const MAX_ATTRIBUTES = 50;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown, max = MAX_MESSAGE_TEXT): v is string {
  return typeof v === 'string' && v.length <= max;
}

function slot(v: unknown): v is DraftSlot {
  return v === 'A' || v === 'B';
}

/** Returns the message if it is well-formed and one the host understands, else undefined. */
export function parseWebviewMessage(raw: unknown): WebviewToHost | undefined {
  if (!isRecord(raw) || typeof raw.type !== 'string') return undefined;
  const m = raw;
  switch (m.type) {
    case 'ready':
    case 'stop':
    case 'openProfile':
    case 'openSideBySide':
    case 'refresh':
    case 'exportData':
    case 'importData':
    case 'reindex':
    case 'retryFailed':
    case 'reset':
      return { type: m.type };
    case 'generate':
      return str(m.prompt) ? { type: 'generate', prompt: m.prompt } : undefined;
    case 'choose':
      return str(m.requestId, MAX_ID) && slot(m.preferred) && str(m.preferredText) && str(m.rejectedText)
        ? { type: 'choose', requestId: m.requestId, preferred: m.preferred, preferredText: m.preferredText, rejectedText: m.rejectedText }
        : undefined;
    case 'skip':
      return str(m.requestId, MAX_ID) ? { type: 'skip', requestId: m.requestId } : undefined;
    case 'keepEdits': {
      if (!str(m.requestId, MAX_ID) || !isRecord(m.edits)) return undefined;
      const edits: Partial<Record<DraftSlot, DraftEdit>> = {};
      for (const [key, value] of Object.entries(m.edits)) {
        if (!slot(key) || !isRecord(value) || !str(value.text) || typeof value.open !== 'boolean') return undefined;
        edits[key] = { text: value.text, open: value.open };
      }
      return { type: 'keepEdits', requestId: m.requestId, edits };
    }
    case 'insert':
      return str(m.text) ? { type: 'insert', text: m.text } : undefined;
    case 'deleteEntry':
      return str(m.pairId, MAX_ID) ? { type: 'deleteEntry', pairId: m.pairId } : undefined;
    case 'editAttributes':
      return str(m.pairId, MAX_ID) &&
        Array.isArray(m.attributes) &&
        m.attributes.length <= MAX_ATTRIBUTES &&
        m.attributes.every((a) => str(a, 100))
        ? { type: 'editAttributes', pairId: m.pairId, attributes: m.attributes as string[] }
        : undefined;
    case 'addCustomAttribute':
    case 'removeCustomAttribute':
      return str(m.name, 100) ? { type: m.type, name: m.name } : undefined;
    default:
      return undefined;
  }
}
