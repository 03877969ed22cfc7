/**
 * The attribute library: Table 4 of the EXACT paper (42 attributes, in the paper's order),
 * with short descriptions of our own for the UI, plus validation of user-defined attributes.
 */

export interface AttributeInfo {
  readonly name: string;
  readonly description: string;
  readonly category: 'style' | 'tone' | 'expertise' | 'values';
  readonly custom?: boolean;
}

const builtIn: ReadonlyArray<AttributeInfo> = [
  { name: 'Base', category: 'style', description: 'Plain, default answer with no particular styling.' },
  { name: 'Formal', category: 'style', description: 'Polished, professional register; no slang or contractions.' },
  { name: 'Concise', category: 'style', description: 'Short and to the point; no padding.' },
  { name: 'Vivid', category: 'style', description: 'Concrete, sensory, colourful wording.' },
  { name: 'Modest', category: 'tone', description: 'Humble, hedged, avoids overclaiming.' },
  { name: 'Engineer', category: 'expertise', description: 'Practical, systems-minded, thinks in trade-offs and mechanisms.' },
  { name: 'Persuasive', category: 'tone', description: 'Argues for a position and tries to convince.' },
  { name: 'Emotion', category: 'tone', description: 'Expresses and acknowledges feelings openly.' },
  { name: 'Humor', category: 'tone', description: 'Light, playful, includes jokes or wit.' },
  { name: 'Energy', category: 'tone', description: 'Upbeat and high-energy.' },
  { name: 'Code', category: 'expertise', description: 'Answers with code or code-like precision where possible.' },
  { name: 'Easy', category: 'style', description: 'Simple words and short sentences; easy to follow.' },
  { name: 'Direct', category: 'tone', description: 'States the answer first, without hedging.' },
  { name: 'Social', category: 'values', description: 'Focuses on people, relationships and community.' },
  { name: 'Western', category: 'values', description: 'Draws on Western cultural references and norms.' },
  { name: 'Eastern', category: 'values', description: 'Draws on Eastern cultural references and norms.' },
  { name: 'Respect', category: 'tone', description: 'Courteous and deferential toward the reader.' },
  { name: 'Internet Slang', category: 'style', description: 'Casual online register: lol, tbh, ngl.' },
  { name: 'Proverb', category: 'style', description: 'Uses sayings, maxims and proverbs.' },
  { name: 'Critical', category: 'tone', description: 'Points out weaknesses, risks and counter-arguments.' },
  { name: 'Vague', category: 'style', description: 'Non-committal and general rather than specific.' },
  { name: 'Creative', category: 'style', description: 'Original, imaginative framing.' },
  { name: 'Analytic', category: 'expertise', description: 'Structured reasoning, numbers and breakdowns.' },
  { name: 'Empathetic', category: 'tone', description: 'Warm, understanding, validates the reader.' },
  { name: 'Sycophant', category: 'tone', description: 'Flatters the reader and agrees readily.' },
  { name: 'Old-fashioned', category: 'style', description: 'Traditional wording and values.' },
  { name: 'Meritocratic', category: 'values', description: 'Values effort, skill and earned outcomes.' },
  { name: 'Myopic', category: 'values', description: 'Focuses on the immediate, short-term view.' },
  { name: 'Principled', category: 'values', description: 'Grounds advice in firm ethical principles.' },
  { name: 'Hedonist', category: 'values', description: 'Prioritises pleasure and enjoyment.' },
  { name: 'Utilitarian', category: 'values', description: 'Weighs outcomes for the greatest overall good.' },
  { name: 'Realist', category: 'values', description: 'Pragmatic and grounded in how things really are.' },
  { name: 'Pessimistic', category: 'tone', description: 'Expects and dwells on what can go wrong.' },
  { name: 'Storyteller', category: 'style', description: 'Explains through a short narrative or anecdote.' },
  { name: 'Flexible', category: 'values', description: 'Offers alternatives and adapts to circumstances.' },
  { name: 'Spontaneous', category: 'values', description: 'Favours acting on impulse over planning.' },
  { name: 'Collectivist', category: 'values', description: 'Puts the group and shared goals first.' },
  { name: 'Individualistic', category: 'values', description: 'Puts personal choice and independence first.' },
  { name: 'Exclamatory', category: 'style', description: 'Lots of exclamations and emphasis!' },
  { name: 'Conspiracy', category: 'values', description: 'Suspects hidden motives and cover-ups.' },
  { name: 'Tech Industry Priority', category: 'values', description: 'Frames things through technology and the tech industry.' },
  { name: 'Eco-friendly', category: 'values', description: 'Considers environmental impact and sustainability.' },
];

/** The 42 attributes of the paper, in a stable order (Table 4, read column by column). */
export const ATTRIBUTE_LIBRARY: ReadonlyArray<AttributeInfo> = Object.freeze(builtIn.map((a) => Object.freeze(a)));

export const ATTRIBUTE_NAMES: ReadonlyArray<string> = Object.freeze(ATTRIBUTE_LIBRARY.map((a) => a.name));

const MAX_ATTRIBUTE_LENGTH = 40;

/** At most this many attributes in one entry (a selection, an edit, an import, an injected block): k's maximum. */
export const MAX_ATTRIBUTES_PER_ENTRY = 10;

export class AttributeValidationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AttributeValidationError';
  }
}

/**
 * What an attribute name may not contain: `<`, `>` and `,` (the `Attributes: <a, b>` block's own
 * syntax), `|`, `[` and `]` (the bones of chat control markers such as `<|im_end|>` and
 * `[INST]`), and control or line-separator characters.
 */
const FORBIDDEN_IN_ATTRIBUTE = /[<>,|[\]\p{Cc}\p{Zl}\p{Zp}]/u;

/**
 * The one check of an attribute name, used by the settings, the profile editor, import, the log
 * and the prompt renderer. Returns undefined when the (already trimmed) name is fine, else why not.
 */
export function attributeNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string') return 'An attribute name must be text.';
  if (name.trim().length === 0) return 'An attribute name cannot be empty.';
  if (name !== name.trim()) return `"${name.trim().slice(0, 20)}" has blanks around it.`;
  if (name.length > MAX_ATTRIBUTE_LENGTH) return `"${name.slice(0, 20)}…" is ${name.length} characters long; use at most ${MAX_ATTRIBUTE_LENGTH}.`;
  if (FORBIDDEN_IN_ATTRIBUTE.test(name)) {
    return `"${name.replace(/\p{Cc}/gu, '?')}" contains one of < > , | [ ] or a line break, which the attribute block cannot hold.`;
  }
  return undefined;
}

export function isValidAttributeName(name: unknown): name is string {
  return attributeNameProblem(name) === undefined;
}

/**
 * Checks a user-defined attribute name against the library and the other custom names.
 * Returns the trimmed name, or throws an AttributeValidationError that says what to change.
 */
export function validateCustomAttribute(name: string, existing: ReadonlyArray<string> = ATTRIBUTE_NAMES): string {
  const trimmed = name.trim();
  const problem = attributeNameProblem(trimmed);
  if (problem !== undefined) throw new AttributeValidationError(problem);
  const lower = trimmed.toLowerCase();
  const clash = existing.find((e) => e.toLowerCase() === lower);
  if (clash !== undefined) {
    throw new AttributeValidationError(`"${trimmed}" already exists as "${clash}".`);
  }
  return trimmed;
}

/** Problems of an attribute list (count, names, duplicates), `index` naming the entry at fault; empty when it is fine. */
export function attributeListProblems(list: unknown): Array<{ readonly index?: number; readonly message: string }> {
  if (!Array.isArray(list)) return [{ message: 'must be an array of attribute names' }];
  const out: Array<{ index?: number; message: string }> = [];
  if (list.length > MAX_ATTRIBUTES_PER_ENTRY) out.push({ message: `has ${list.length} attributes; at most ${MAX_ATTRIBUTES_PER_ENTRY} are allowed` });
  list.forEach((a, index) => {
    const message = attributeNameProblem(a);
    if (message !== undefined) out.push({ index, message });
  });
  if (new Set(list).size !== list.length) out.push({ message: 'contains duplicates' });
  return out;
}

/** The library extended with validated custom attributes (built-ins first, in their order). */
export function buildAttributeLibrary(customNames: ReadonlyArray<string> = []): AttributeInfo[] {
  const names = [...ATTRIBUTE_NAMES];
  const custom: AttributeInfo[] = [];
  for (const raw of customNames) {
    const name = validateCustomAttribute(raw, names);
    names.push(name);
    custom.push({ name, description: 'Defined by you.', category: 'style', custom: true });
  }
  return [...ATTRIBUTE_LIBRARY, ...custom];
}
