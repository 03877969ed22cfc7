/**
 * Small helpers for the benchmark reports: statistics, Markdown tables, hand-written SVG charts,
 * a terminal progress line, and command-line options.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export function mean(xs: ReadonlyArray<number>): number {
  return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Sample standard deviation (n - 1); 0 for a single value. */
function std(xs: ReadonlyArray<number>): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1));
}

export function median(xs: ReadonlyArray<number>): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function percentile(xs: ReadonlyArray<number>, p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}

export interface MeanStd {
  readonly mean: number;
  readonly std: number;
  readonly perSeed: number[];
}

export function meanStd(perSeed: ReadonlyArray<number>): MeanStd {
  return { mean: mean(perSeed), std: std(perSeed), perSeed: [...perSeed] };
}

export function pct(x: number, digits = 1): string {
  return Number.isFinite(x) ? (100 * x).toFixed(digits) : 'n/a';
}

export function fmtMeanStd(m: MeanStd | undefined): string {
  return m === undefined || !Number.isFinite(m.mean) ? 'n/a' : `${pct(m.mean)} ± ${pct(m.std)}`;
}

export function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function table(header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string {
  const line = (cells: ReadonlyArray<string>): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

export function writeText(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text.endsWith('\n') ? text : `${text}\n`);
}

export function writeJson(path: string, value: unknown): void {
  writeText(path, JSON.stringify(value, null, 2));
}

// ------------------------------------------------------------------------------ options

export function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : fallback;
}

export function flag(name: string): boolean {
  return process.argv.includes(`--${name}`);
}

// ------------------------------------------------------------------------------ progress

/** One self-overwriting line on a terminal; plain lines (at most every 10%) otherwise. */
export class Progress {
  private lastDecile = -1;
  private readonly t0 = performance.now();
  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  update(done: number, note = ''): void {
    const frac = this.total === 0 ? 1 : done / this.total;
    const secs = (performance.now() - this.t0) / 1000;
    const text = `${this.label} ${bar(frac, 24)} ${done}/${this.total} ${secs.toFixed(0)}s ${note}`;
    if (this.stream.isTTY) this.stream.write(`\r${text.slice(0, (this.stream.columns ?? 100) - 1).padEnd(Math.min(100, (this.stream.columns ?? 100) - 1))}`);
    else {
      const decile = Math.floor(frac * 10);
      if (decile !== this.lastDecile) {
        this.lastDecile = decile;
        this.stream.write(`${text}\n`);
      }
    }
  }

  finish(note = ''): void {
    this.update(this.total, note);
    if (this.stream.isTTY) this.stream.write('\n');
  }
}

export function bar(frac: number, width: number): string {
  const f = Math.max(0, Math.min(1, frac));
  const full = Math.floor(f * width);
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}]`;
}

// ------------------------------------------------------------------------------ SVG

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#9c755f', '#bab0ac'];

export interface BarGroup {
  /** Label under the group (a method). */
  readonly label: string;
  /** One value per series, in [0, 1]; NaN leaves a gap. */
  readonly values: ReadonlyArray<number>;
  readonly errors?: ReadonlyArray<number>;
}


/** The opening of a chart: the svg element, a white background, the title and the subtitle. */
function svgOpening(width: number, height: number, left: number, options: { title: string; subtitle?: string }): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${left}" y="22" font-size="15" font-weight="bold">${esc(options.title)}</text>`,
    ...(options.subtitle !== undefined ? [`<text x="${left}" y="40" fill="#555">${esc(options.subtitle)}</text>`] : []),
  ];
}

/** Grouped vertical bars with error bars, values in [0, 1] shown as percent. */
export function barChartSvg(options: {
  title: string;
  subtitle?: string;
  series: ReadonlyArray<string>;
  groups: ReadonlyArray<BarGroup>;
  reference?: { value: number; label: string };
}): string {
  const { series, groups } = options;
  const left = 56;
  const top = 64;
  const plotH = 260;
  const barW = 22;
  const groupGap = 26;
  const groupW = series.length * barW + groupGap;
  const width = Math.max(520, left + groups.length * groupW + 20);
  const height = top + plotH + 110;
  const y = (v: number): number => top + plotH * (1 - v);
  const parts = svgOpening(width, height, left, options);
  for (let t = 0; t <= 10; t += 2) {
    const v = t / 10;
    parts.push(`<line x1="${left}" x2="${width - 10}" y1="${y(v)}" y2="${y(v)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end" fill="#555">${t * 10}%</text>`);
  }
  if (options.reference !== undefined) {
    const ry = y(options.reference.value);
    parts.push(`<line x1="${left}" x2="${width - 10}" y1="${ry}" y2="${ry}" stroke="#999" stroke-dasharray="4 3"/>`);
    parts.push(`<line x1="${width - 250}" x2="${width - 226}" y1="36" y2="36" stroke="#999" stroke-dasharray="4 3"/>`);
    parts.push(`<text x="${width - 222}" y="40" fill="#555">${esc(`${options.reference.label} (${(100 * options.reference.value).toFixed(0)}%)`)}</text>`);
  }
  groups.forEach((g, gi) => {
    const gx = left + 12 + gi * groupW;
    g.values.forEach((v, si) => {
      if (!Number.isFinite(v)) return;
      const x = gx + si * barW;
      parts.push(`<rect x="${x}" y="${y(v)}" width="${barW - 3}" height="${plotH * v}" fill="${PALETTE[si % PALETTE.length]}"><title>${esc(`${g.label} / ${series[si]}: ${(100 * v).toFixed(1)}%`)}</title></rect>`);
      const e = g.errors?.[si];
      if (e !== undefined && Number.isFinite(e) && e > 0) {
        const cx = x + (barW - 3) / 2;
        parts.push(`<line x1="${cx}" x2="${cx}" y1="${y(Math.min(1, v + e))}" y2="${y(Math.max(0, v - e))}" stroke="#222"/>`);
        parts.push(`<line x1="${cx - 4}" x2="${cx + 4}" y1="${y(Math.min(1, v + e))}" y2="${y(Math.min(1, v + e))}" stroke="#222"/>`);
        parts.push(`<line x1="${cx - 4}" x2="${cx + 4}" y1="${y(Math.max(0, v - e))}" y2="${y(Math.max(0, v - e))}" stroke="#222"/>`);
      }
      const labelAt = e !== undefined && Number.isFinite(e) && e > 0 ? Math.min(1, v + e) : v;
      parts.push(`<text x="${x + (barW - 3) / 2}" y="${y(labelAt) - 4}" text-anchor="middle" font-size="9" fill="#333">${(100 * v).toFixed(0)}</text>`);
    });
    const lx = gx + (series.length * barW) / 2;
    const words = g.label.split(' ');
    const lines: string[] = [];
    for (const w of words) {
      const last = lines[lines.length - 1];
      if (last !== undefined && (last + ' ' + w).length <= 16) lines[lines.length - 1] = `${last} ${w}`;
      else lines.push(w);
    }
    lines.forEach((l, li) => parts.push(`<text x="${lx}" y="${top + plotH + 16 + li * 13}" text-anchor="middle">${esc(l)}</text>`));
  });
  parts.push(`<line x1="${left}" x2="${width - 10}" y1="${y(0)}" y2="${y(0)}" stroke="#333"/>`);
  // legend
  let lx = left;
  const ly = height - 22;
  series.forEach((s, si) => {
    parts.push(`<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${PALETTE[si % PALETTE.length]}"/>`);
    parts.push(`<text x="${lx + 16}" y="${ly}">${esc(s)}</text>`);
    lx += 16 + s.length * 6.5 + 18;
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** Lines over a numeric x axis, values in [0, 1] shown as percent. */
export function lineChartSvg(options: {
  title: string;
  subtitle?: string;
  xLabel: string;
  xs: ReadonlyArray<number>;
  lines: ReadonlyArray<{ label: string; values: ReadonlyArray<number>; errors?: ReadonlyArray<number> }>;
}): string {
  const width = 560;
  const left = 56;
  const top = 60;
  const plotW = width - left - 30;
  const plotH = 240;
  const height = top + plotH + 86;
  const xi = (i: number): number => left + (options.xs.length === 1 ? plotW / 2 : (plotW * i) / (options.xs.length - 1));
  const y = (v: number): number => top + plotH * (1 - v);
  const parts = svgOpening(width, height, left, options);
  for (let t = 0; t <= 10; t += 2) {
    parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${y(t / 10)}" y2="${y(t / 10)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${left - 6}" y="${y(t / 10) + 4}" text-anchor="end" fill="#555">${t * 10}%</text>`);
  }
  options.xs.forEach((x, i) => parts.push(`<text x="${xi(i)}" y="${top + plotH + 16}" text-anchor="middle">${x}</text>`));
  parts.push(`<text x="${left + plotW / 2}" y="${top + plotH + 34}" text-anchor="middle" fill="#555">${esc(options.xLabel)}</text>`);
  options.lines.forEach((l, li) => {
    const color = PALETTE[li % PALETTE.length]!;
    const pts = l.values.map((v, i) => `${xi(i)},${y(v)}`).join(' ');
    parts.push(`<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="2"/>`);
    l.values.forEach((v, i) => {
      parts.push(`<circle cx="${xi(i)}" cy="${y(v)}" r="3.5" fill="${color}"><title>${esc(`${l.label}, ${options.xLabel} ${options.xs[i]}: ${(100 * v).toFixed(1)}%`)}</title></circle>`);
      const e = l.errors?.[i];
      if (e !== undefined && e > 0) parts.push(`<line x1="${xi(i)}" x2="${xi(i)}" y1="${y(Math.min(1, v + e))}" y2="${y(Math.max(0, v - e))}" stroke="${color}"/>`);
    });
    const lx = left + (li % 3) * 165;
    const ly = height - 36 + Math.floor(li / 3) * 16;
    parts.push(`<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${color}"/>`);
    parts.push(`<text x="${lx + 16}" y="${ly}">${esc(l.label)}</text>`);
  });
  parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${y(0)}" y2="${y(0)}" stroke="#333"/>`);
  parts.push('</svg>');
  return parts.join('\n');
}
