/**
 * A small GGUF v3 writer and a random-weight llama model built with it, for tests and
 * benchmarks that need a real model file without downloading one.
 *
 * The model is a plain llama architecture (RMSNorm, RoPE, SwiGLU) with F32 weights drawn from a
 * seeded normal distribution, a character-level SentencePiece ("llama") vocabulary with byte
 * fallback and ChatML special tokens, and a ChatML chat template. Everything is deterministic in
 * the options: the same options give the same bytes.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seededRandom } from '../../src/core/exploration';

// ---------------------------------------------------------------------------------------------
// GGUF v3 writer
// ---------------------------------------------------------------------------------------------

/** GGUF metadata value types (gguf.h). */
export const GgufType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
type ScalarType = Exclude<(typeof GgufType)[keyof typeof GgufType], 9>;

export type GgufValue =
  | { type: ScalarType; value: number | bigint | boolean | string }
  | { type: 9; itemType: ScalarType; values: ReadonlyArray<number | bigint | boolean | string> };

export interface GgufTensor {
  readonly name: string;
  /** ggml order: ne[0] (the contiguous dimension) first, i.e. the reverse of torch's shape. */
  readonly dims: ReadonlyArray<number>;
  readonly data: Float32Array;
}

const GGML_TYPE_F32 = 0;

/** Little-endian byte sink that grows as needed. */
class ByteWriter {
  private buf = Buffer.alloc(1 << 16);
  length = 0;

  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = Buffer.alloc(size);
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  u8(v: number): void { this.ensure(1); this.buf.writeUInt8(v, this.length); this.length += 1; }
  i8(v: number): void { this.ensure(1); this.buf.writeInt8(v, this.length); this.length += 1; }
  u16(v: number): void { this.ensure(2); this.buf.writeUInt16LE(v, this.length); this.length += 2; }
  i16(v: number): void { this.ensure(2); this.buf.writeInt16LE(v, this.length); this.length += 2; }
  u32(v: number): void { this.ensure(4); this.buf.writeUInt32LE(v, this.length); this.length += 4; }
  i32(v: number): void { this.ensure(4); this.buf.writeInt32LE(v, this.length); this.length += 4; }
  f32(v: number): void { this.ensure(4); this.buf.writeFloatLE(v, this.length); this.length += 4; }
  f64(v: number): void { this.ensure(8); this.buf.writeDoubleLE(v, this.length); this.length += 8; }
  u64(v: number | bigint): void { this.ensure(8); this.buf.writeBigUInt64LE(BigInt(v), this.length); this.length += 8; }
  i64(v: number | bigint): void { this.ensure(8); this.buf.writeBigInt64LE(BigInt(v), this.length); this.length += 8; }
  bytes(b: Uint8Array): void { this.ensure(b.length); this.buf.set(b, this.length); this.length += b.length; }
  str(s: string): void { const b = Buffer.from(s, 'utf8'); this.u64(b.length); this.bytes(b); }
  pad(alignment: number): void { const n = (alignment - (this.length % alignment)) % alignment; this.ensure(n); this.buf.fill(0, this.length, this.length + n); this.length += n; }
  result(): Buffer { return this.buf.subarray(0, this.length); }
}

function writeScalar(w: ByteWriter, type: ScalarType, v: number | bigint | boolean | string): void {
  switch (type) {
    case GgufType.UINT8: return w.u8(Number(v));
    case GgufType.INT8: return w.i8(Number(v));
    case GgufType.UINT16: return w.u16(Number(v));
    case GgufType.INT16: return w.i16(Number(v));
    case GgufType.UINT32: return w.u32(Number(v));
    case GgufType.INT32: return w.i32(Number(v));
    case GgufType.FLOAT32: return w.f32(Number(v));
    case GgufType.BOOL: return w.u8(v === true ? 1 : 0);
    case GgufType.STRING: return w.str(String(v));
    case GgufType.UINT64: return w.u64(typeof v === 'bigint' ? v : Number(v));
    case GgufType.INT64: return w.i64(typeof v === 'bigint' ? v : Number(v));
    case GgufType.FLOAT64: return w.f64(Number(v));
  }
}

/** Serializes a GGUF v3 file: header, key-values, tensor infos, then aligned F32 tensor data. */
export function writeGguf(metadata: ReadonlyArray<readonly [string, GgufValue]>, tensors: ReadonlyArray<GgufTensor>, alignment = 32): Buffer {
  const w = new ByteWriter();
  w.bytes(Buffer.from('GGUF', 'ascii'));
  w.u32(3);
  w.u64(tensors.length);
  w.u64(metadata.length);
  for (const [key, value] of metadata) {
    w.str(key);
    w.u32(value.type);
    if (value.type === GgufType.ARRAY) {
      w.u32(value.itemType);
      w.u64(value.values.length);
      for (const item of value.values) writeScalar(w, value.itemType, item);
    } else {
      writeScalar(w, value.type, value.value);
    }
  }
  let offset = 0;
  for (const t of tensors) {
    const count = t.dims.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new Error(`Tensor ${t.name}: dims ${t.dims.join('x')} need ${count} values, got ${t.data.length}.`);
    w.str(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(GGML_TYPE_F32);
    w.u64(offset);
    offset += t.data.byteLength;
    offset += (alignment - (offset % alignment)) % alignment;
  }
  w.pad(alignment);
  for (const t of tensors) {
    w.bytes(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    w.pad(alignment);
  }
  return w.result();
}

// ---------------------------------------------------------------------------------------------
// A character-level SentencePiece vocabulary
// ---------------------------------------------------------------------------------------------

export const CHATML_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** SentencePiece token types (llama.cpp's llama_token_type). */
const TOKEN_NORMAL = 1;
const TOKEN_UNKNOWN = 2;
const TOKEN_CONTROL = 3;
const TOKEN_BYTE = 6;

export interface Vocabulary {
  readonly tokens: string[];
  readonly scores: number[];
  readonly types: number[];
  readonly unk: number;
  readonly bos: number;
  readonly eos: number;
  readonly imStart: number;
  readonly imEnd: number;
}

/** Letters in rough English frequency order; "▁" is SentencePiece's space. */
const FREQUENT = '▁etaoinshrdlcumwfgypbvkjxqz';
/** The smallest vocabulary: 5 special tokens, 256 byte tokens, "▁" and printable ASCII. */
export const MIN_VOCAB_SIZE = 5 + 256 + 1 + 94;

/**
 * unk, BOS, EOS, <|im_start|>, <|im_end|>, the 256 byte-fallback tokens <0xXX>, "▁" and the 94
 * printable ASCII characters, then multi-character pieces built level by level (all pairs of
 * frequent characters, then triples, ...) so that every piece's prefixes are in the vocabulary,
 * which SentencePiece's bigram merging needs to reach it. Earlier pieces get higher scores.
 */
export function charVocabulary(vocabSize: number): Vocabulary {
  if (!Number.isInteger(vocabSize) || vocabSize < MIN_VOCAB_SIZE) {
    throw new RangeError(`vocabSize must be an integer >= ${MIN_VOCAB_SIZE}, got ${vocabSize}.`);
  }
  const tokens: string[] = ['<unk>', '<s>', '</s>', '<|im_start|>', '<|im_end|>'];
  const types: number[] = [TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_CONTROL, TOKEN_CONTROL, TOKEN_CONTROL];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TOKEN_BYTE);
  }
  tokens.push('▁');
  types.push(TOKEN_NORMAL);
  for (let c = 33; c <= 126; c++) {
    tokens.push(String.fromCharCode(c));
    types.push(TOKEN_NORMAL);
  }
  const scores: number[] = tokens.map(() => 0);
  // Level by level, each level in order of summed character rank (frequent-looking pieces first),
  // generated lazily: a 32k vocabulary needs only part of the 4-character level.
  const chars = [...FREQUENT];
  let level: Array<[string, number]> = chars.map((ch, i) => [ch, i]);
  let mergeIndex = 0;
  while (tokens.length < vocabSize) {
    const byRank = new Map<number, string[]>();
    for (const [piece, r] of level) {
      const list = byRank.get(r);
      if (list === undefined) byRank.set(r, [piece]);
      else list.push(piece);
    }
    const maxRank = Math.max(...byRank.keys()) + chars.length;
    const next: Array<[string, number]> = [];
    for (let total = 0; total <= maxRank && tokens.length < vocabSize; total++) {
      for (const [r, prefixes] of byRank) {
        const ch = chars[total - r];
        if (ch === undefined) continue;
        for (const prefix of prefixes) {
          if (tokens.length >= vocabSize) break;
          tokens.push(prefix + ch);
          types.push(TOKEN_NORMAL);
          scores.push(-++mergeIndex);
          next.push([prefix + ch, total]);
        }
      }
    }
    level = next;
  }
  return { tokens, scores, types, unk: 0, bos: 1, eos: 2, imStart: 3, imEnd: 4 };
}

// ---------------------------------------------------------------------------------------------
// Random llama weights
// ---------------------------------------------------------------------------------------------


function normal(rand: () => number, n: number, std: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = 1 - rand();
    const v = rand();
    const r = Math.sqrt(-2 * Math.log(u)) * std;
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}

export interface RandomLlamaOptions {
  /** Weight seed (default 1). */
  readonly seed?: number;
  /** Vocabulary size, at least MIN_VOCAB_SIZE (default 512). */
  readonly vocabSize?: number;
  /** Hidden size (default 64). */
  readonly embeddingLength?: number;
  /** Transformer blocks (default 2). */
  readonly layers?: number;
  /** Attention heads (default 4). */
  readonly heads?: number;
  /** Key/value heads (default: heads). */
  readonly headsKv?: number;
  /** FFN hidden size (default 4 x hidden). */
  readonly feedForwardLength?: number;
  /** Training context length written to the file (default 1024). */
  readonly contextLength?: number;
  /** Jinja chat template (default ChatML); null writes none. */
  readonly chatTemplate?: string | null;
  /** SentencePiece's space prefix after special tokens and at the start (default false). */
  readonly addSpacePrefix?: boolean;
  /** Standard deviation of the output projection times sqrt(hidden) (default 3: peaked distributions). */
  readonly outputScale?: number;
  /** general.architecture; anything but "llama" makes a file llama.cpp refuses (default "llama"). */
  readonly architecture?: string;
  /** EOS token: "im_end" (ChatML style, default) or "eos" (</s>). */
  readonly eos?: 'im_end' | 'eos';
  /** [from, to] token pairs: token `to` gets the output row of `from`, so their logits tie everywhere. */
  readonly tiedOutputRows?: ReadonlyArray<readonly [number, number]>;
}

/** A complete GGUF file holding a random-weight llama model. */
export function buildRandomLlamaGguf(options: RandomLlamaOptions = {}): Buffer {
  const seed = options.seed ?? 1;
  const nVocab = options.vocabSize ?? 512;
  const nEmbd = options.embeddingLength ?? 64;
  const nLayer = options.layers ?? 2;
  const nHead = options.heads ?? 4;
  const nHeadKv = options.headsKv ?? nHead;
  const nFf = options.feedForwardLength ?? 4 * nEmbd;
  const nCtx = options.contextLength ?? 1024;
  const arch = options.architecture ?? 'llama';
  if (nEmbd % nHead !== 0) throw new RangeError('embeddingLength must be a multiple of heads.');
  if (nHead % nHeadKv !== 0) throw new RangeError('heads must be a multiple of headsKv.');
  const headDim = nEmbd / nHead;
  const vocab = charVocabulary(nVocab);
  const rand = seededRandom(seed);
  const w = (n: number, std: number): Float32Array => normal(rand, n, std);
  const ones = (n: number): Float32Array => new Float32Array(n).fill(1);
  const std = 1 / Math.sqrt(nEmbd);

  const tokenEmbedding = w(nEmbd * nVocab, 1);
  const output = w(nEmbd * nVocab, (options.outputScale ?? 3) * std);
  for (const [from, to] of options.tiedOutputRows ?? []) output.copyWithin(to * nEmbd, from * nEmbd, (from + 1) * nEmbd);
  const tensors: GgufTensor[] = [
    { name: 'token_embd.weight', dims: [nEmbd, nVocab], data: tokenEmbedding },
    { name: 'output_norm.weight', dims: [nEmbd], data: ones(nEmbd) },
    { name: 'output.weight', dims: [nEmbd, nVocab], data: output },
  ];
  for (let l = 0; l < nLayer; l++) {
    const p = `blk.${l}.`;
    tensors.push(
      { name: `${p}attn_norm.weight`, dims: [nEmbd], data: ones(nEmbd) },
      { name: `${p}attn_q.weight`, dims: [nEmbd, nEmbd], data: w(nEmbd * nEmbd, std) },
      { name: `${p}attn_k.weight`, dims: [nEmbd, headDim * nHeadKv], data: w(nEmbd * headDim * nHeadKv, std) },
      { name: `${p}attn_v.weight`, dims: [nEmbd, headDim * nHeadKv], data: w(nEmbd * headDim * nHeadKv, std) },
      { name: `${p}attn_output.weight`, dims: [nEmbd, nEmbd], data: w(nEmbd * nEmbd, std) },
      { name: `${p}ffn_norm.weight`, dims: [nEmbd], data: ones(nEmbd) },
      { name: `${p}ffn_gate.weight`, dims: [nEmbd, nFf], data: w(nEmbd * nFf, std) },
      { name: `${p}ffn_up.weight`, dims: [nEmbd, nFf], data: w(nEmbd * nFf, std) },
      { name: `${p}ffn_down.weight`, dims: [nFf, nEmbd], data: w(nFf * nEmbd, 1 / Math.sqrt(nFf)) },
    );
  }

  const u32 = (value: number): GgufValue => ({ type: GgufType.UINT32, value });
  const metadata: Array<[string, GgufValue]> = [
    ['general.architecture', { type: GgufType.STRING, value: arch }],
    ['general.name', { type: GgufType.STRING, value: `random-llama-v${nVocab}-d${nEmbd}-l${nLayer}-s${seed}` }],
    ['general.file_type', u32(0)],
    [`${arch}.context_length`, u32(nCtx)],
    [`${arch}.embedding_length`, u32(nEmbd)],
    [`${arch}.block_count`, u32(nLayer)],
    [`${arch}.feed_forward_length`, u32(nFf)],
    [`${arch}.attention.head_count`, u32(nHead)],
    [`${arch}.attention.head_count_kv`, u32(nHeadKv)],
    [`${arch}.attention.layer_norm_rms_epsilon`, { type: GgufType.FLOAT32, value: 1e-5 }],
    [`${arch}.rope.freq_base`, { type: GgufType.FLOAT32, value: 10000 }],
    [`${arch}.rope.dimension_count`, u32(headDim)],
    [`${arch}.vocab_size`, u32(nVocab)],
    ['tokenizer.ggml.model', { type: GgufType.STRING, value: 'llama' }],
    ['tokenizer.ggml.tokens', { type: GgufType.ARRAY, itemType: GgufType.STRING, values: vocab.tokens }],
    ['tokenizer.ggml.scores', { type: GgufType.ARRAY, itemType: GgufType.FLOAT32, values: vocab.scores }],
    ['tokenizer.ggml.token_type', { type: GgufType.ARRAY, itemType: GgufType.INT32, values: vocab.types }],
    ['tokenizer.ggml.bos_token_id', u32(vocab.bos)],
    ['tokenizer.ggml.eos_token_id', u32(options.eos === 'eos' ? vocab.eos : vocab.imEnd)],
    ['tokenizer.ggml.unknown_token_id', u32(vocab.unk)],
    ['tokenizer.ggml.add_bos_token', { type: GgufType.BOOL, value: false }],
    ['tokenizer.ggml.add_eos_token', { type: GgufType.BOOL, value: false }],
    ['tokenizer.ggml.add_space_prefix', { type: GgufType.BOOL, value: options.addSpacePrefix ?? false }],
  ];
  const template = options.chatTemplate === undefined ? CHATML_TEMPLATE : options.chatTemplate;
  if (template !== null) metadata.push(['tokenizer.chat_template', { type: GgufType.STRING, value: template }]);
  return writeGguf(metadata, tensors);
}

/**
 * Writes the random model to a cache folder (keyed by its options) and returns the path; later
 * calls with the same options reuse the file. Writes go through a temporary name and a rename,
 * so concurrent test processes never see half a file.
 */
export function randomLlamaModelPath(options: RandomLlamaOptions = {}, dir = join(tmpdir(), 'exact-random-gguf')): string {
  const key = createHash('sha256').update(JSON.stringify({ v: 2, ...options })).digest('hex').slice(0, 16);
  const file = join(dir, `random-llama-${key}.gguf`);
  if (existsSync(file)) return file;
  mkdirSync(dir, { recursive: true });
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, buildRandomLlamaGguf(options));
  renameSync(tmp, file);
  return file;
}
