/**
 * Planted users for the benchmarks and the demo: synthetic users of the attribute world
 * (tools/attribute-world/corpus.ts) whose preferred attribute set depends on the topic of the
 * prompt, and their preference pairs.
 *
 * A pair for user u on prompt x (topic t): chosen = writeResponse(x, P_u(t)), the response that
 * realizes the user's planted set for that topic; rejected = writeResponse(x, R), a response that
 * realizes other attributes R. R is
 *   - for a user whose preferences shift across topics, half of the time the user's own planted set
 *     for another topic (the contextual preference shift of the paper's Tables 1, 5, 6: what they
 *     like on one topic is what they reject on another);
 *   - otherwise a plain answer (R = {}) one time in five, else 1-2 random core attributes that are
 *     disjoint from P_u(t) and do not conflict with each other.
 * All prompts come from the held-out split: templates or slot values the fixture model never saw
 * in training, so nothing a method does can be explained by memorized prompts.
 */
import {
  CONFLICTING_PAIRS,
  CORE_ATTRIBUTES,
  hashSeed,
  makeRng,
  samplePrompts,
  writeResponse,
  type Prompt,
  type Rng,
  type Topic,
} from '../../tools/attribute-world/corpus';

export interface PlantedUser {
  readonly id: string;
  /** One line for reports. */
  readonly description: string;
  /** Topic -> the attribute set this user prefers on it ([] = the plain answer). */
  readonly preferences: Readonly<Partial<Record<Topic, ReadonlyArray<string>>>>;
  /**
   * How the rejected response differs (default 'other': see userPairs). 'one-attribute': it
   * realizes the planted set with one attribute dropped or one other attribute added, so the
   * two responses differ in exactly one attribute.
   */
  readonly rejects?: 'other' | 'one-attribute';
  /** Share of recorded choices that are the wrong way round (a careless user), default 0. */
  readonly flipRate?: number;
}

/**
 * Twelve users. Four are consistent (one set on all their topics), eight shift between topics;
 * the first ten are the default benchmark population.
 */
export const PLANTED_USERS: ReadonlyArray<PlantedUser> = [
  {
    id: 'u01-terse-coder',
    description: 'consistent: Concise + Direct everywhere',
    preferences: { programming: ['Concise', 'Direct'], money: ['Concise', 'Direct'], health: ['Concise', 'Direct'] },
  },
  {
    id: 'u02-storyteller',
    description: 'consistent: Storyteller + Humor everywhere',
    preferences: { cooking: ['Storyteller', 'Humor'], travel: ['Storyteller', 'Humor'], relationships: ['Storyteller', 'Humor'] },
  },
  {
    id: 'u03-length-flip',
    description: 'shift (Table 5): long stories on cooking, short direct answers on programming',
    preferences: { cooking: ['Storyteller', 'Vivid'], programming: ['Concise', 'Direct'] },
  },
  {
    id: 'u04-tone-flip',
    description: 'shift: playful on travel, formal and critical on money',
    preferences: { travel: ['Exclamatory', 'Humor'], money: ['Formal', 'Critical'] },
  },
  {
    id: 'u05-three-modes',
    description: 'shift over three topics: warm on health, analytic on programming, slangy on cooking',
    preferences: { health: ['Empathetic', 'Modest'], programming: ['Analytic', 'Critical'], cooking: ['Internet Slang', 'Humor'] },
  },
  {
    id: 'u06-formal-analyst',
    description: 'consistent: Formal + Analytic everywhere',
    preferences: { money: ['Formal', 'Analytic'], programming: ['Formal', 'Analytic'], health: ['Formal', 'Analytic'] },
  },
  {
    id: 'u07-proverbs-vs-brevity',
    description: 'shift: proverbs and empathy on relationships, concise and vivid on travel',
    preferences: { relationships: ['Proverb', 'Empathetic'], travel: ['Concise', 'Vivid'] },
  },
  {
    id: 'u08-partial-shift',
    description: 'partial shift: Direct on both, plus Critical on programming, Easy on health',
    preferences: { programming: ['Direct', 'Critical'], health: ['Direct', 'Easy'] },
  },
  {
    id: 'u09-numbers-vs-fun',
    description: 'shift: concise analysis on money, vivid and exclamatory on cooking',
    preferences: { money: ['Concise', 'Analytic'], cooking: ['Vivid', 'Exclamatory'] },
  },
  {
    id: 'u10-gentle',
    description: 'consistent: Empathetic + Easy everywhere',
    preferences: { health: ['Empathetic', 'Easy'], relationships: ['Empathetic', 'Easy'] },
  },
  {
    id: 'u11-slang-vs-formal',
    description: 'shift (full reversal): slang on travel, formal on relationships',
    preferences: { travel: ['Internet Slang', 'Exclamatory'], relationships: ['Formal', 'Modest'] },
  },
  {
    id: 'u12-humble-proverbs',
    description: 'consistent: Modest + Proverb everywhere',
    preferences: { relationships: ['Modest', 'Proverb'], health: ['Modest', 'Proverb'], cooking: ['Modest', 'Proverb'] },
  },
  {
    id: 'u13-plain',
    description: 'plain: prefers the unstyled answer to any styled one, on every topic',
    preferences: { programming: [], travel: [], health: [] },
  },
  {
    id: 'u14-single-humor',
    description: 'consistent, one attribute: Humor everywhere',
    preferences: { cooking: ['Humor'], money: ['Humor'], relationships: ['Humor'] },
  },
  {
    id: 'u15-single-shift',
    description: 'shift, one attribute per topic: Formal on money, Vivid on travel, Concise on programming',
    preferences: { money: ['Formal'], travel: ['Vivid'], programming: ['Concise'] },
  },
  {
    id: 'u16-careless',
    description: 'shift with 20% of choices the wrong way round: Storyteller + Humor on cooking, Concise + Analytic on money',
    preferences: { cooking: ['Storyteller', 'Humor'], money: ['Concise', 'Analytic'] },
    flipRate: 0.2,
  },
  {
    id: 'u17-one-attribute',
    description: 'shift, pairs differ in one attribute: Empathetic + Easy on health, Direct + Critical on programming',
    preferences: { health: ['Empathetic', 'Easy'], programming: ['Direct', 'Critical'] },
    rejects: 'one-attribute',
  },
  {
    id: 'u18-three-modes',
    description: 'shift over three topics: vivid stories on travel, formal analysis on money, slang humor on cooking',
    preferences: { travel: ['Vivid', 'Storyteller'], money: ['Formal', 'Analytic'], cooking: ['Internet Slang', 'Humor'] },
  },
];

export function userTopics(user: PlantedUser): Topic[] {
  return Object.keys(user.preferences) as Topic[];
}

export function plantedSet(user: PlantedUser, topic: Topic): ReadonlyArray<string> {
  const set = user.preferences[topic];
  if (set === undefined) throw new Error(`${user.id} has no preference for ${topic}`);
  return set;
}

export interface PlantedPair {
  readonly id: string;
  readonly userId: string;
  readonly topic: Topic;
  readonly promptInfo: Prompt;
  readonly prompt: string;
  readonly chosen: string;
  readonly rejected: string;
  /** The attributes the chosen response realizes (the user's planted set for the topic). */
  readonly planted: ReadonlyArray<string>;
  /** The attributes the rejected response realizes. */
  readonly rejectedAttributes: ReadonlyArray<string>;
  /** True when the rejected response is the user's planted set for another topic. */
  readonly reversal: boolean;
  /** True when the recorded choice is the wrong way round (chosen realizes rejectedAttributes). */
  readonly flipped?: boolean;
}

function conflicts(a: string, b: string): boolean {
  return CONFLICTING_PAIRS.some(([x, y]) => (x === a && y === b) || (x === b && y === a));
}

function randomOther(rng: Rng, avoid: ReadonlyArray<string>): string[] {
  const size = 1 + Math.floor(rng() * 2);
  const options = CORE_ATTRIBUTES.filter((a) => !avoid.includes(a));
  const out: string[] = [];
  for (let tries = 0; out.length < size && tries < 100; tries++) {
    const a = options[Math.floor(rng() * options.length)]!;
    if (!out.includes(a) && !out.some((b) => conflicts(a, b))) out.push(a);
  }
  return out;
}

/** The planted set with one attribute dropped, or (for a single attribute, or half of the time) one other added. */
function oneAttributeOff(rng: Rng, planted: ReadonlyArray<string>): string[] {
  if (planted.length > 1 && rng() < 0.5) {
    const drop = Math.floor(rng() * planted.length);
    return planted.filter((_, i) => i !== drop);
  }
  const options = CORE_ATTRIBUTES.filter((a) => !planted.includes(a) && !planted.some((b) => conflicts(a, b)));
  return [...planted, options[Math.floor(rng() * options.length)]!];
}

/**
 * `n` pairs for a user, spread round-robin over their topics (held-out prompts, all distinct),
 * deterministic in (user, seed).
 */
export function userPairs(user: PlantedUser, n: number, seed: number): PlantedPair[] {
  const topics = userTopics(user);
  const perTopic = Math.ceil(n / topics.length);
  const prompts = new Map(topics.map((t) => [t, samplePrompts(hashSeed('bench-user', user.id, seed), t, perTopic, 'heldout')]));
  const rng = makeRng(hashSeed('bench-pairs', user.id, seed));
  const out: PlantedPair[] = [];
  for (let i = 0; out.length < n; i++) {
    const topic = topics[i % topics.length]!;
    const promptInfo = prompts.get(topic)![Math.floor(i / topics.length)]!;
    const planted = plantedSet(user, topic);
    const others = topics.filter((t) => t !== topic).map((t) => plantedSet(user, t)).filter((s) => [...s].sort().join() !== [...planted].sort().join());
    let rejectedAttributes: string[];
    let reversal = false;
    if (user.rejects === 'one-attribute') rejectedAttributes = oneAttributeOff(rng, planted);
    else if (planted.length === 0) rejectedAttributes = randomOther(rng, planted);
    else if (others.length > 0 && rng() < 0.5) {
      rejectedAttributes = [...others[Math.floor(rng() * others.length)]!];
      reversal = true;
    } else if (rng() < 0.2) rejectedAttributes = [];
    else rejectedAttributes = randomOther(rng, planted);
    const chosen = writeResponse(promptInfo, planted, hashSeed('chosen', user.id, seed, i));
    const rejected = writeResponse(promptInfo, rejectedAttributes, hashSeed('rejected', user.id, seed, i));
    if (chosen === rejected) continue;
    if (user.flipRate !== undefined && rng() < user.flipRate) {
      out.push({ id: `${user.id}.${i}`, userId: user.id, topic, promptInfo, prompt: promptInfo.text, chosen: rejected, rejected: chosen, planted, rejectedAttributes, reversal, flipped: true });
      continue;
    }
    out.push({
      id: `${user.id}.${i}`,
      userId: user.id,
      topic,
      promptInfo,
      prompt: promptInfo.text,
      chosen,
      rejected,
      planted,
      rejectedAttributes,
      reversal,
    });
  }
  return out;
}

/** Fisher-Yates with the corpus PRNG. */
export function shuffle<T>(items: ReadonlyArray<T>, seed: number): T[] {
  const rng = makeRng(seed);
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** The paper's per-user 8:2 split after a seeded shuffle (at least one test pair). */
export function splitPairs<T>(items: ReadonlyArray<T>, seed: number): { train: T[]; test: T[] } {
  const s = shuffle(items, seed);
  const nTest = Math.max(1, Math.round(s.length * 0.2));
  return { train: s.slice(0, s.length - nTest), test: s.slice(s.length - nTest) };
}
