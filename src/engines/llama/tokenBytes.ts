/**
 * The raw bytes a token stands for, which a JavaScript string cannot always carry (a token can
 * hold half a UTF-8 character). Ollama reports them per generated token (`bytes`).
 */

/** GPT-2's byte-to-unicode table, inverted: the character a BPE vocabulary writes for each byte. */
function gpt2UnicodeToByte(): Map<string, number> {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const map = new Map<string, number>();
  for (const b of printable) map.set(String.fromCodePoint(b), b);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    if (!printable.includes(b)) map.set(String.fromCodePoint(256 + extra++), b);
  }
  return map;
}

let gpt2Table: Map<string, number> | undefined;

/**
 * Bytes of one vocabulary entry.
 * - SentencePiece ("spm", "ugm"): `<0xHH>` byte-fallback tokens are that byte; `▁` is a space.
 * - Byte-level BPE ("bpe"): every character maps back to one byte through GPT-2's table.
 * Returns undefined when the entry cannot be decoded this way (the caller falls back to the
 * detokenized text).
 */
export function vocabularyEntryBytes(entry: string, vocabularyType: string, isByteToken: boolean): Uint8Array | undefined {
  if (vocabularyType === 'spm' || vocabularyType === 'ugm') {
    const m = /^<0x([0-9A-Fa-f]{2})>$/u.exec(entry);
    if (isByteToken && m !== null) return Uint8Array.of(parseInt(m[1]!, 16));
    return Buffer.from(entry.replaceAll('\u2581', ' '), 'utf8');
  }
  if (vocabularyType === 'bpe') {
    gpt2Table ??= gpt2UnicodeToByte();
    const out: number[] = [];
    for (const ch of entry) {
      const b = gpt2Table.get(ch);
      if (b === undefined) return Buffer.from(entry, 'utf8'); // added tokens are stored as plain text
      out.push(b);
    }
    return Uint8Array.from(out);
  }
  return undefined;
}
