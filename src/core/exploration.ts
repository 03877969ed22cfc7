/**
 * The second draft's attributes. Showing the retrieved attributes against a contrasting set makes
 * each choice informative: the user's thumbs-up tells us which direction they prefer.
 */

/** A small seeded PRNG (mulberry32), so exploration is reproducible in tests and demos. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * k attributes disjoint from `retrieved`, favouring those the user has been shown least
 * (`timesSeen`), with random tie-breaking. 'Base' is never proposed: it means "no styling".
 */
export function exploratoryAttributes(
  retrieved: ReadonlyArray<string>,
  library: ReadonlyArray<string>,
  k: number,
  random: () => number,
  timesSeen: ReadonlyMap<string, number> = new Map(),
): string[] {
  const taken = new Set(retrieved.map((a) => a.toLowerCase()));
  const candidates = library
    .filter((a) => !taken.has(a.toLowerCase()) && a !== 'Base')
    .map((a) => ({ a, seen: timesSeen.get(a) ?? 0, r: random() }));
  candidates.sort((x, y) => x.seen - y.seen || x.r - y.r);
  return candidates.slice(0, Math.max(0, k)).map((c) => c.a);
}
