/**
 * The records of the preference log (pairs.jsonl), one JSON object per line, and their
 * validation. Every record carries `v` (the schema version) and `type`.
 */

import { attributeListProblems, attributeNameProblem } from '../core/attributes';

export const LOG_SCHEMA_VERSION = 1;

/** Limits that keep one record a reasonable line (and reject garbage on import). */
export const LIMITS = {
  idLength: 128,
  textLength: 200_000,
  sourceLength: 64,
  modelLength: 512,
  embeddingDims: 16_384,
} as const;

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;

export interface HeaderRecord {
  readonly v: number;
  readonly type: 'header';
  readonly format: 'exact-preference-log';
  readonly createdAt: string;
}

export interface PairRecord {
  readonly v: number;
  readonly type: 'pair';
  readonly id: string;
  readonly prompt: string;
  readonly chosen: string;
  readonly rejected: string;
  /** Where the choice came from: 'drafts', 'import', ... */
  readonly source: string;
  readonly createdAt: string;
}

export interface SelectionStepRecord {
  readonly attribute: string;
  readonly marginalGain: number;
  readonly objective: number;
}

export interface ScorerInfo {
  /** e.g. 'llama.cpp', 'ollama', 'fake'. */
  readonly kind: string;
  /** scoreBatch invocations. */
  readonly calls: number;
  readonly scoredSequences: number;
  readonly objectiveEvaluations: number;
}

/** A prompt embedding: float64 little-endian, base64 (exact, about half the size of JSON numbers). */
export interface EncodedEmbedding {
  readonly dims: number;
  readonly f64: string;
}

export interface SelectionRecord {
  readonly v: number;
  readonly type: 'selection';
  /** Unique id of this selection record. */
  readonly id: string;
  readonly pairId: string;
  readonly attributes: ReadonlyArray<string>;
  readonly objective: number;
  readonly baseObjective: number;
  readonly gain: number;
  readonly steps: ReadonlyArray<SelectionStepRecord>;
  /** The scoring model (identifier given by the engine). */
  readonly model: string;
  /** The embedder's id (Embedder.id). */
  readonly embeddingModel: string;
  readonly scorer: ScorerInfo;
  readonly algorithm: 'greedy' | 'lazy' | 'screening' | 'exhaustive' | 'other';
  readonly k: number;
  readonly durationMs: number;
  readonly createdAt: string;
  /** The prompt's embedding under embeddingModel. */
  readonly embedding: EncodedEmbedding;
}

/** What a selection says, apart from its identity and embedding (records, views and exports share it). */
export type SelectionContent = Omit<SelectionRecord, 'v' | 'type' | 'id' | 'pairId' | 'embedding'>;

/** A deep copy of a selection's content: the one place its fields are listed. */
export function copySelectionContent(s: SelectionContent): SelectionContent {
  return {
    attributes: [...s.attributes],
    objective: s.objective,
    baseObjective: s.baseObjective,
    gain: s.gain,
    steps: s.steps.map((st) => ({ attribute: st.attribute, marginalGain: st.marginalGain, objective: st.objective })),
    model: s.model,
    embeddingModel: s.embeddingModel,
    scorer: { kind: s.scorer.kind, calls: s.scorer.calls, scoredSequences: s.scorer.scoredSequences, objectiveEvaluations: s.scorer.objectiveEvaluations },
    algorithm: s.algorithm,
    k: s.k,
    durationMs: s.durationMs,
    createdAt: s.createdAt,
  };
}

export interface DeleteRecord {
  readonly v: number;
  readonly type: 'delete';
  readonly pairId: string;
  readonly createdAt: string;
}

/** A user override of a pair's attributes; null clears the override. */
export interface EditRecord {
  readonly v: number;
  readonly type: 'edit';
  readonly pairId: string;
  readonly attributes: ReadonlyArray<string> | null;
  readonly createdAt: string;
}

export type LogRecord = HeaderRecord | PairRecord | SelectionRecord | DeleteRecord | EditRecord;

export function encodeEmbedding(vector: ReadonlyArray<number>): EncodedEmbedding {
  const array = Float64Array.from(vector);
  return { dims: array.length, f64: Buffer.from(array.buffer, array.byteOffset, array.byteLength).toString('base64') };
}

export function decodeEmbedding(e: EncodedEmbedding): number[] {
  const bytes = Buffer.from(e.f64, 'base64');
  if (bytes.length !== e.dims * 8) throw new Error(`Embedding has ${bytes.length} bytes, expected ${e.dims * 8}.`);
  const out = new Array<number>(e.dims);
  for (let i = 0; i < e.dims; i++) out[i] = bytes.readDoubleLE(i * 8);
  return out;
}

/** Collects validation problems with a path, so import errors say where. */
export class Problems {
  readonly list: string[] = [];
  add(path: string, message: string): void {
    if (this.list.length < 50) this.list.push(`${path}: ${message}`);
  }
  get ok(): boolean {
    return this.list.length === 0;
  }
}

type Obj = Record<string, unknown>;

function isObj(x: unknown): x is Obj {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function str(o: Obj, key: string, p: Problems, at: string, max: number, allowEmpty = false): void {
  const v = o[key];
  if (typeof v !== 'string') p.add(`${at}.${key}`, 'must be a string');
  else if (!allowEmpty && v.length === 0) p.add(`${at}.${key}`, 'must not be empty');
  else if (v.length > max) p.add(`${at}.${key}`, `is longer than ${max} characters`);
}

function id(o: Obj, key: string, p: Problems, at: string): void {
  const v = o[key];
  if (typeof v !== 'string' || v.length === 0 || v.length > LIMITS.idLength || !ID_PATTERN.test(v)) {
    p.add(`${at}.${key}`, `must be an id (letters, digits, . _ : -; at most ${LIMITS.idLength})`);
  }
}

function num(o: Obj, key: string, p: Problems, at: string): void {
  if (typeof o[key] !== 'number' || !Number.isFinite(o[key])) p.add(`${at}.${key}`, 'must be a finite number');
}

function date(o: Obj, key: string, p: Problems, at: string): void {
  const v = o[key];
  if (typeof v !== 'string' || v.length > 40 || Number.isNaN(Date.parse(v))) p.add(`${at}.${key}`, 'must be an ISO date');
}

/** Attribute lists of selections, edits and imports: the core's one attribute-name check. */
export function checkAttributes(v: unknown, p: Problems, at: string): void {
  for (const { index, message } of attributeListProblems(v)) p.add(index === undefined ? at : `${at}[${index}]`, message);
}

function checkEmbedding(v: unknown, p: Problems, at: string): void {
  if (!isObj(v)) return p.add(at, 'must be {dims, f64}');
  const dims = v.dims;
  if (typeof dims !== 'number' || !Number.isInteger(dims) || dims < 1 || dims > LIMITS.embeddingDims) {
    return p.add(`${at}.dims`, `must be an integer in 1..${LIMITS.embeddingDims}`);
  }
  if (typeof v.f64 !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v.f64)) return p.add(`${at}.f64`, 'must be base64');
  try {
    const values = decodeEmbedding(v as unknown as EncodedEmbedding);
    if (!values.every(Number.isFinite)) p.add(at, 'contains non-finite values');
  } catch (err) {
    p.add(at, (err as Error).message);
  }
}

/** The fields of a pair, shared by the log record and the export format. */
export function checkPairFields(o: Obj, p: Problems, at: string): void {
  id(o, 'id', p, at);
  str(o, 'prompt', p, at, LIMITS.textLength);
  str(o, 'chosen', p, at, LIMITS.textLength, true);
  str(o, 'rejected', p, at, LIMITS.textLength, true);
  str(o, 'source', p, at, LIMITS.sourceLength);
  date(o, 'createdAt', p, at);
}

/** The fields of a selection (without v/type), shared by the log record and the export format. */
export function checkSelectionFields(o: Obj, p: Problems, at: string): void {
  id(o, 'id', p, at);
  id(o, 'pairId', p, at);
  checkAttributes(o.attributes, p, `${at}.attributes`);
  num(o, 'objective', p, at);
  num(o, 'baseObjective', p, at);
  num(o, 'gain', p, at);
  if (!Array.isArray(o.steps)) p.add(`${at}.steps`, 'must be an array');
  else
    o.steps.forEach((s, i) => {
      if (!isObj(s)) return p.add(`${at}.steps[${i}]`, 'must be an object');
      const problem = attributeNameProblem(s.attribute);
      if (problem !== undefined) p.add(`${at}.steps[${i}].attribute`, problem);
      num(s, 'marginalGain', p, `${at}.steps[${i}]`);
      num(s, 'objective', p, `${at}.steps[${i}]`);
    });
  str(o, 'model', p, at, LIMITS.modelLength);
  str(o, 'embeddingModel', p, at, LIMITS.modelLength);
  if (!isObj(o.scorer)) p.add(`${at}.scorer`, 'must be an object');
  else {
    str(o.scorer, 'kind', p, `${at}.scorer`, LIMITS.modelLength);
    num(o.scorer, 'calls', p, `${at}.scorer`);
    num(o.scorer, 'scoredSequences', p, `${at}.scorer`);
    num(o.scorer, 'objectiveEvaluations', p, `${at}.scorer`);
  }
  if (!['greedy', 'lazy', 'screening', 'exhaustive', 'other'].includes(o.algorithm as string)) p.add(`${at}.algorithm`, 'must be greedy, lazy, screening, exhaustive or other');
  if (typeof o.k !== 'number' || !Number.isInteger(o.k) || o.k < 0) p.add(`${at}.k`, 'must be a non-negative integer');
  num(o, 'durationMs', p, at);
  date(o, 'createdAt', p, at);
  checkEmbedding(o.embedding, p, `${at}.embedding`);
}

export type RecordCheck = { record: LogRecord } | { unsupported: true } | { problems: string[] };

/** Validates one parsed log line. Records of a newer schema are reported as unsupported, not invalid. */
export function checkRecord(x: unknown): RecordCheck {
  const p = new Problems();
  if (!isObj(x)) return { problems: ['record: must be an object'] };
  if (typeof x.v !== 'number' || !Number.isInteger(x.v) || x.v < 1) return { problems: ['record.v: must be a schema version'] };
  if (x.v > LOG_SCHEMA_VERSION) return { unsupported: true };
  switch (x.type) {
    case 'header':
      if (x.format !== 'exact-preference-log') p.add('record.format', 'must be exact-preference-log');
      break;
    case 'pair':
      checkPairFields(x, p, 'record');
      break;
    case 'selection':
      checkSelectionFields(x, p, 'record');
      break;
    case 'delete':
      id(x, 'pairId', p, 'record');
      date(x, 'createdAt', p, 'record');
      break;
    case 'edit':
      id(x, 'pairId', p, 'record');
      date(x, 'createdAt', p, 'record');
      if (x.attributes !== null) checkAttributes(x.attributes, p, 'record.attributes');
      break;
    default:
      // An unknown type at our version: written by something else; skip it.
      return { unsupported: true };
  }
  return p.ok ? { record: x as unknown as LogRecord } : { problems: p.list };
}

export function isValidId(value: string): boolean {
  return value.length > 0 && value.length <= LIMITS.idLength && ID_PATTERN.test(value);
}
