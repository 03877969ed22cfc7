/**
 * The quality benchmark's data: for each data seed, every user's training and test pairs, drawn
 * fresh (new prompts and responses per seed, not a re-split of one pool).
 */
import { shuffle, userPairs, type PlantedPair, type PlantedUser } from './world';

export type UserGroup = 'shift' | 'consistent' | 'plain';

export function userGroup(user: PlantedUser): UserGroup {
  const sets = Object.values(user.preferences).map((s) => [...(s ?? [])].sort().join('|'));
  if (sets.every((s) => s === '')) return 'plain';
  return new Set(sets).size > 1 ? 'shift' : 'consistent';
}

export interface UserData {
  readonly user: PlantedUser;
  /** In recording order; the first n are the user's history when n pairs were recorded. */
  readonly train: PlantedPair[];
  /** The user's true preference (a careless user's flips are undone here). */
  readonly test: PlantedPair[];
}

/**
 * Pair ids carry the seed, so the seeds' pairs never collide in maps keyed by id. `nTrain` may
 * depend on the user (the benchmark records more choices for users whose style shifts).
 */
export function seedData(users: ReadonlyArray<PlantedUser>, seed: number, nTrain: number | ((u: PlantedUser) => number), nTest: number): UserData[] {
  return users.map((user, u) => {
    const n = typeof nTrain === 'number' ? nTrain : nTrain(user);
    const pairs = shuffle(userPairs(user, n + nTest, seed), seed * 1000 + u).map((p) => ({ ...p, id: `s${seed}.${p.id}` }));
    const test = pairs.slice(n).map((p) => (p.flipped === true ? { ...p, chosen: p.rejected, rejected: p.chosen, flipped: false } : p));
    return { user, train: pairs.slice(0, n), test };
  });
}
