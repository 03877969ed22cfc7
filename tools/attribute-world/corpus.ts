/**
 * The attribute world: a small synthetic universe of user prompts and attribute-styled answers.
 *
 * It trains the project's tiny test model (tools/train-fixture) and gives benchmarks, the demo
 * and tests prompts with known "right" responses for any attribute set. Everything here is a
 * pure function of its arguments (seeded PRNG, no I/O) except the CLI at the bottom.
 *
 * A prompt comes from a topic template with slot fillers ("How do I make {dish} for
 * {occasion}?"). A response realizes an attribute set: style attributes rewrite the whole answer
 * (Formal, Internet Slang, Exclamatory, Vivid, ...), the other attributes add a recognizable
 * sentence (long mode) or a short clause (Concise mode: the answer is then one sentence).
 * Every one of the 42 library attributes has a realization; Base is a no-op.
 *
 * Attributes reach the model as the paper's attribute block, one extra line after the prompt:
 *   `${prompt}\nAttributes: <Concise, Humor>`
 */

import { ATTRIBUTE_NAMES } from '../../src/core/attributes';
import { seededRandom } from '../../src/core/exploration';
import { attributeBlock, buildAttributedPrompt } from '../../src/core/prompt';

// ---------------------------------------------------------------------------------------------
// Seeded randomness
// ---------------------------------------------------------------------------------------------

/** A deterministic source of floats in [0, 1). */
export type Rng = () => number;

/** mulberry32 (the core's seeded PRNG): small, fast, and good enough for sampling text. */
export const makeRng: (seed: number) => Rng = seededRandom;

/** FNV-1a over the parts' string forms: derives stable sub-seeds. */
export function hashSeed(...parts: ReadonlyArray<string | number>): number {
  let h = 0x811c9dc5;
  for (const part of parts) {
    const s = `${String(part)}\u0000`;
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
  }
  return h >>> 0;
}

function pick<T>(rng: Rng, items: ReadonlyArray<T>): T {
  if (items.length === 0) throw new Error('pick from an empty list');
  return items[Math.floor(rng() * items.length)] as T;
}

function shuffled<T>(rng: Rng, items: ReadonlyArray<T>): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Topics: slot fillers and prompt templates
// ---------------------------------------------------------------------------------------------

export const TOPICS = ['cooking', 'travel', 'programming', 'money', 'health', 'relationships'] as const;
export type Topic = (typeof TOPICS)[number];

/** A slot value; `x` is an associated phrase (e.g. the fix for a problem), used as {slot.x}. */
interface SlotValue {
  readonly v: string;
  readonly x?: string;
}

/**
 * The last HELD_OUT_PER_SLOT values of every slot list never appear in training prompts, nor
 * do templates marked heldOut: prompts that use any of them form the held-out split.
 */
export const HELD_OUT_PER_SLOT = 2;

interface Template {
  readonly id: string;
  /** The user's prompt, with {slot} fields (a trailing digit reuses a list: {ingredient2}). */
  readonly prompt: string;
  /** A noun phrase for what the prompt is about ("a soggy pasta"), used by added sentences. */
  readonly focus: string;
  /** The answer in one or two sentences; the first one is an imperative. */
  readonly core: readonly [string, string];
  /** The answer as one short imperative clause, lower case, no final period (Concise). */
  readonly short: string;
  readonly heldOut?: boolean;
}

interface TopicData {
  readonly slots: Readonly<Record<string, ReadonlyArray<SlotValue>>>;
  readonly templates: ReadonlyArray<Template>;
  /** Neutral second sentences, used instead of the template's second sentence a third of the time. */
  readonly support: ReadonlyArray<string>;
  readonly vividAdjectives: ReadonlyArray<string>;
  readonly scenes: ReadonlyArray<string>;
  readonly jokes: ReadonlyArray<string>;
  readonly shortJokes: ReadonlyArray<string>;
  readonly risks: ReadonlyArray<string>;
  readonly factors: ReadonlyArray<string>;
  readonly industry: string;
  readonly eco: ReadonlyArray<string>;
  readonly tech: string;
  readonly western: ReadonlyArray<string>;
  readonly eastern: ReadonlyArray<string>;
  readonly alternative: ReadonlyArray<string>;
  readonly metaphor: ReadonlyArray<string>;
  readonly code: ReadonlyArray<string>;
  readonly tradeoff: string;
  readonly oldWay: string;
}

const vals = (...items: string[]): SlotValue[] => items.map((v) => ({ v }));
const pairs = (...items: Array<[string, string]>): SlotValue[] => items.map(([v, x]) => ({ v, x }));

const COOKING: TopicData = {
  slots: {
    dish: vals('pasta', 'rice', 'soup', 'curry', 'bread', 'salad', 'stew', 'stir-fry', 'risotto', 'chili', 'lasagna', 'fried rice', 'banana bread', 'oatmeal', 'roast chicken', 'paella', 'gnocchi'),
    ingredient: vals('garlic', 'onions', 'lentils', 'spinach', 'tofu', 'eggs', 'mushrooms', 'chickpeas', 'potatoes', 'tomatoes', 'cheese', 'carrots', 'ginger', 'zucchini', 'eggplant', 'salmon'),
    problem: pairs(
      ['bland', 'add more salt and a squeeze of lemon'],
      ['soggy', 'use higher heat and less liquid'],
      ['burnt', 'lower the heat and stir more often'],
      ['too salty', 'balance it with a splash of unsalted broth'],
      ['dry', 'cook it a little less and add some fat'],
      ['sticky', 'rinse off the extra starch first'],
      ['too spicy', 'stir in some yogurt or a pinch of sugar'],
      ['mushy', 'cut the cooking time by a few minutes'],
    ),
    occasion: vals('a weeknight dinner', 'a birthday party', 'a picnic', 'a first date', 'a family lunch', 'a potluck', 'a holiday meal', 'a camping trip', 'a work lunch'),
    tool: vals('a cast-iron pan', 'a rice cooker', 'a slow cooker', 'an air fryer', 'a wok', 'a stand mixer', 'a pressure cooker', 'a sous vide stick'),
    count: vals('two', 'four', 'six', 'eight', 'ten', 'twelve', 'fifteen', 'twenty'),
  },
  templates: [
    { id: 'cook-make', prompt: 'How do I make {dish} for {occasion}?', focus: 'cooking {dish} for {occasion}', core: ['Keep the {dish} simple and start early for {occasion}.', 'Prep everything first, then cook on medium heat and taste as you go.'], short: 'keep the {dish} simple and prep everything early' },
    { id: 'cook-fix', prompt: 'My {dish} always comes out {problem}. What am I doing wrong?', focus: 'a {problem} {dish}', core: ['{problem.x|cap} next time.', 'A {problem} {dish} usually means the heat or the timing is off.'], short: '{problem.x} next time' },
    { id: 'cook-with', prompt: 'What can I cook with {ingredient} and {ingredient2}?', focus: 'cooking with {ingredient} and {ingredient2}', core: ['Try a quick stir-fry with the {ingredient} and {ingredient2}.', 'Cook the {ingredient} first, then add the {ingredient2} and season to taste.'], short: 'try a quick stir-fry with {ingredient} and {ingredient2}' },
    { id: 'cook-tool', prompt: 'Is {tool} worth buying if I cook {dish} a lot?', focus: 'choosing {tool}', core: ['Buy {tool} only if you make {dish} every week.', 'Otherwise, a good pan and a little patience do most of the same work.'], short: 'buy {tool} only if you make {dish} every week' },
    { id: 'cook-count', prompt: 'How much {dish} should I make for {count} people?', focus: 'feeding {count} people', core: ['Plan one generous portion of {dish} per person, plus one extra.', "It's better to have leftovers than hungry guests."], short: 'plan one portion per person plus one extra' },
    { id: 'cook-healthy', prompt: "What's a healthy way to cook {ingredient}?", focus: 'cooking {ingredient} the healthy way', core: ['Roast or steam the {ingredient} with a little olive oil.', 'Season it with herbs and lemon instead of heavy sauces.'], short: 'roast or steam the {ingredient} with a little olive oil' },
    { id: 'cook-swap', prompt: 'Can I use {ingredient} instead of {ingredient2} in {dish}?', focus: 'swapping {ingredient2} for {ingredient}', core: ['Go ahead and swap in the {ingredient}, but use a little less at first.', 'Taste the {dish} as it cooks, since {ingredient} changes the flavor.'], short: 'swap in the {ingredient}, but start with less' },
    { id: 'cook-store', prompt: 'How should I store leftover {dish}?', focus: 'storing leftover {dish}', core: ['Cool the {dish} quickly and keep it in a sealed container in the fridge.', 'Eat it within three days, or freeze it for later.'], short: 'refrigerate the {dish} in a sealed container' },
    { id: 'cook-sides', prompt: 'What goes well with {dish} at {occasion}?', focus: 'planning sides for {occasion}', core: ['Serve the {dish} with a crisp green salad and some fresh bread.', 'Add one simple dessert and {occasion} is covered.'], short: 'serve the {dish} with a green salad and fresh bread' },
    { id: 'cook-gadget', prompt: 'Any tips for cooking {dish} with {tool}?', focus: 'cooking {dish} with {tool}', core: ['Start with a small batch of {dish} and read the manual for {tool} once.', 'Write down the time and settings that work.'], short: 'start with a small batch and note the settings' },
    { id: 'cook-learn', prompt: "I'm new to cooking. Where should I start with {dish}?", focus: 'learning to cook {dish}', core: ['Pick one easy {dish} recipe and make it three times in a row.', 'Each round, change one thing and notice the difference.'], short: 'pick one easy {dish} recipe and repeat it' },
    { id: 'cook-flavor', prompt: 'How do I get more flavor into {dish} made with {ingredient}?', focus: 'a flat-tasting {dish}', core: ['Brown the {ingredient} well before adding anything else.', 'Finish the {dish} with salt, acid, and fresh herbs.'], short: 'brown the {ingredient} well and finish with salt and acid', heldOut: true },
    { id: 'cook-quick', prompt: "What's the quickest {dish} I can make for {occasion}?", focus: 'a quick {dish} for {occasion}', core: ['Make a one-pan {dish} with whatever vegetables you already have.', 'It takes about twenty minutes and leaves little to clean.'], short: 'make a one-pan {dish} with what you have', heldOut: true },
  ],
  support: ['Good cooking is mostly patience and tasting.', 'Small changes make a big difference.', 'Your second try will already be better.'],
  vividAdjectives: ['sizzling', 'golden', 'fragrant', 'steaming'],
  scenes: ['Picture the kitchen filling with the smell of garlic and butter.', 'Picture a steaming pot and a table full of happy, hungry faces.'],
  jokes: ['Remember, the smoke alarm is not a timer.', 'Worst case, order pizza and call it research.', 'If it goes wrong, just call it a rustic style.'],
  shortJokes: ['and the smoke alarm is not a timer', 'or order pizza and call it research'],
  risks: ['One caveat, though: high heat burns things fast, so stay close to the stove.', 'One caveat, though: most recipes underestimate the prep time.'],
  factors: ['heat', 'timing', 'seasoning', 'ingredient quality', 'your tools', 'portion size'],
  industry: 'big food brands',
  eco: ['Go green: buy local vegetables and compost the scraps.', 'Go green: cook with lids on to save energy.'],
  tech: 'a recipe app',
  western: ['Think of a classic Sunday roast: simple, hearty, and shared.', 'Like a good American diner, keep it simple and generous.'],
  eastern: ['As in many Japanese kitchens, balance is everything.', 'Like a Chinese home cook, prepare everything before the wok gets hot.'],
  alternative: ['a simple one-pot version', 'a cold dish that needs no stove'],
  metaphor: ['a little science experiment you get to eat', 'a song where every ingredient plays one note'],
  code: ['`if taste() == "bland": add(salt)`', '`while not done(): stir(); taste()`'],
  tradeoff: 'time and flavor',
  oldWay: 'Back in my day, we cooked everything from scratch and nobody complained.',
};

const TRAVEL: TopicData = {
  slots: {
    place: vals('Lisbon', 'Tokyo', 'Mexico City', 'Rome', 'Bangkok', 'Vancouver', 'Cape Town', 'Istanbul', 'Reykjavik', 'Seoul', 'Buenos Aires', 'Prague', 'Marrakesh', 'Hanoi'),
    duration: vals('a weekend', 'three days', 'a week', 'ten days', 'two weeks', 'a month', 'five days', 'six weeks'),
    budget: vals('a tight budget', 'a modest budget', 'a student budget', 'a flexible budget', 'a family budget', 'a backpacker budget', 'a shoestring budget'),
    companion: vals('my kids', 'my partner', 'my parents', 'a group of friends', 'my dog', 'my coworkers', 'my grandmother', 'a toddler'),
    season: vals('winter', 'summer', 'spring', 'autumn', 'the rainy season', 'the holidays', 'peak season'),
    problem: pairs(
      ['jet lag', 'get outside in daylight and sleep at local time'],
      ['lost luggage', 'report it at the airport desk before you leave'],
      ['a missed flight', 'go to the airline desk right away and ask for the next seat'],
      ['getting sick abroad', 'find a pharmacy and keep your insurance number handy'],
      ['pickpockets', 'keep your phone and wallet in a front pocket'],
      ['a canceled train', 'check the next departure and ask about a refund'],
      ['language barriers', 'learn ten key phrases and carry a small phrasebook'],
    ),
    item: vals('a rain jacket', 'comfortable shoes', 'a power bank', 'a first-aid kit', 'a reusable bottle', 'a travel pillow', 'a padlock', 'a sleeping bag'),
  },
  templates: [
    { id: 'travel-see', prompt: 'What should I see in {place} in {duration}?', focus: 'planning {duration} in {place}', core: ['Pick two neighborhoods in {place} and explore them slowly on foot.', 'Save one day for a local market and a long lunch.'], short: 'pick two neighborhoods in {place} and explore them on foot' },
    { id: 'travel-budget', prompt: 'How can I visit {place} on {budget}?', focus: 'seeing {place} on {budget}', core: ['Stay in a guesthouse outside the center of {place} and use public transport.', 'Eat where locals eat, and everything gets much cheaper.'], short: 'stay outside the center and eat where locals eat' },
    { id: 'travel-season', prompt: 'Is {season} a good time to travel to {place}?', focus: 'visiting {place} in {season}', core: ['Check the weather and crowd levels for {place} in {season} before you book.', 'Shoulder months are often calmer and cheaper.'], short: 'check the weather and crowds for {season} first' },
    { id: 'travel-problem', prompt: 'How do I deal with {problem} on a trip?', focus: '{problem} on a trip', core: ['{problem.x|cap}.', 'Stay calm, because most travel problems are fixable within a day.'], short: '{problem.x}' },
    { id: 'travel-with', prompt: 'Any tips for traveling to {place} with {companion}?', focus: 'traveling with {companion}', core: ['Plan shorter days and build in breaks when traveling with {companion}.', 'Book a place with a kitchen so meals stay easy.'], short: 'plan shorter days with plenty of breaks' },
    { id: 'travel-pack', prompt: 'Should I pack {item} for {duration} in {place}?', focus: 'packing for {place}', core: ["Pack {item} if it's small, because it saves trouble later.", 'Leave the rest at home and travel light.'], short: 'pack {item} and keep the bag light' },
    { id: 'travel-book', prompt: 'How far ahead should I book flights to {place}?', focus: 'booking flights to {place}', core: ['Book flights to {place} about two to three months ahead.', 'Set a price alert and stay flexible by a day or two.'], short: 'book two to three months ahead and set a price alert' },
    { id: 'travel-around', prompt: "What's the best way to get around {place}?", focus: 'getting around {place}', core: ['Use the metro or buses in {place} and buy a multi-day pass.', 'Walk whenever you can, since that is where the surprises are.'], short: 'use public transport and walk when you can' },
    { id: 'travel-alone', prompt: "I'm nervous about traveling alone to {place}. Any advice?", focus: 'traveling alone to {place}', core: ['Share your plans with someone at home and book the first night in advance.', 'Join a walking tour on day one to meet people.'], short: 'share your plans and book the first night ahead' },
    { id: 'travel-avoid', prompt: 'How do I avoid {problem} when visiting {place}?', focus: 'avoiding {problem}', core: ['Prepare ahead, and if it happens anyway, {problem.x}.', 'A little planning keeps {problem} from ruining the trip.'], short: 'prepare ahead and know what to do' },
    { id: 'travel-rain', prompt: 'What should I do on a rainy day in {place}?', focus: 'a rainy day in {place}', core: ['Visit a museum or a covered market in {place}.', 'Then find a cozy cafe and slow down for an hour.'], short: 'visit a museum, then find a cozy cafe', heldOut: true },
    { id: 'travel-plan', prompt: 'How do I plan {duration} in {place} with {companion}?', focus: 'a trip with {companion}', core: ['Plan one main activity per day with {companion}.', 'Keep the evenings free and let the trip breathe.'], short: 'plan one main activity per day and keep evenings free', heldOut: true },
  ],
  support: ['The best trips leave room for surprises.', 'A little planning goes a long way.', 'Travel slowly and you will see more.'],
  vividAdjectives: ['sun-drenched', 'bustling', 'winding', 'breezy'],
  scenes: ['Picture golden light over a quiet harbor at dawn.', 'Picture narrow streets, warm bread, and church bells at noon.'],
  jokes: ['Pack half the clothes and twice the snacks.', 'Your suitcase will still be too full, it is the law of travel.', 'At least jet lag gives you two breakfasts.'],
  shortJokes: ['and pack twice the snacks', 'and your suitcase will still be too full'],
  risks: ['One caveat, though: cheap flights often hide fees for bags and seats.', 'One caveat, though: tourist areas are where prices and scams are highest.'],
  factors: ['cost', 'season', 'distance', 'safety', 'your energy', 'local transport'],
  industry: 'the airlines',
  eco: ['Go green: take the train where you can and skip short flights.', 'Go green: carry a reusable bottle and stay in local guesthouses.'],
  tech: 'a trip planner app',
  western: ['Think of a classic American road trip: loose plans and open roads.', 'Like a European rail pass, flexibility is the real luxury.'],
  eastern: ['As in Japan, respect local customs and the trip gets easier.', 'Like a traveler in India, expect chaos and enjoy it.'],
  alternative: ['a slower, cheaper overland route', 'a short trip closer to home'],
  metaphor: ['a story you write one day at a time', 'a book where you only plan the first chapter'],
  code: ['`for day in trip: explore(one_area)`', '`if budget < cost: stay_longer(fewer_places)`'],
  tradeoff: 'comfort and cost',
  oldWay: 'Back in my day, we traveled with a paper map and asked strangers for directions.',
};

const PROGRAMMING: TopicData = {
  slots: {
    lang: vals('Python', 'JavaScript', 'TypeScript', 'Rust', 'Go', 'Java', 'C++', 'Ruby', 'Kotlin', 'Swift', 'Haskell', 'Elixir'),
    thing: vals('a web server', 'a command-line tool', 'a to-do app', 'a web scraper', 'a chat bot', 'a game', 'a REST API', 'a data pipeline', 'a compiler', 'a browser extension'),
    bug: pairs(
      ['a memory leak', 'profile memory and look for objects that never get released'],
      ['a race condition', 'protect shared state with a lock or message passing'],
      ['an off-by-one error', 'check the loop bounds with a tiny example'],
      ['a null pointer crash', 'check for missing values where data enters the program'],
      ['a slow query', 'add an index and measure again'],
      ['flaky tests', 'remove shared state and fixed sleeps from the tests'],
      ['a deadlock', 'always take locks in the same order'],
      ['an infinite loop', 'log the loop variable and check the exit condition'],
    ),
    concept: vals('recursion', 'closures', 'async code', 'generics', 'pointers', 'dependency injection', 'unit testing', 'git branches', 'monads', 'lifetimes'),
    tool: vals('VS Code', 'Docker', 'git hooks', 'a debugger', 'a linter', 'a profiler', 'Vim', 'Kubernetes'),
  },
  templates: [
    { id: 'prog-learn', prompt: 'How do I learn {lang} quickly?', focus: 'learning {lang}', core: ['Build a small project in {lang} right away instead of only reading.', "Read other people's code and fix one bug a day."], short: 'build a small project in {lang} right away' },
    { id: 'prog-build', prompt: "What's the best way to build {thing} in {lang}?", focus: 'building {thing} in {lang}', core: ['Start with the smallest version of {thing} that works in {lang}.', 'Add tests early, then grow it one feature at a time.'], short: 'start with the smallest working version and add tests' },
    { id: 'prog-fix', prompt: 'How do I fix {bug} in my {lang} code?', focus: '{bug} in {lang}', core: ['{bug.x|cap}.', 'Reproduce it with a tiny test first, so you know when it is fixed.'], short: '{bug.x}' },
    { id: 'prog-explain', prompt: 'Can you explain {concept} in {lang}?', focus: 'understanding {concept}', core: ['Write three tiny examples of {concept} in {lang} and run them.', 'Change one line at a time and predict the output first.'], short: 'write tiny examples of {concept} and run them' },
    { id: 'prog-tool', prompt: 'Should I use {tool} for my {lang} project?', focus: 'choosing {tool}', core: ['Use {tool} if it solves a problem you actually have today.', 'Try it on a small branch before adopting it everywhere.'], short: 'use {tool} only if it solves a real problem' },
    { id: 'prog-slow', prompt: 'My {thing} is too slow. How do I speed it up?', focus: 'a slow {thing}', core: ['Measure first with a profiler to find the slowest part.', 'Fix that one hotspot, then measure again.'], short: 'profile it and fix the biggest hotspot' },
    { id: 'prog-first', prompt: 'Is {lang} a good first language?', focus: 'picking {lang} as a first language', core: ['Choose {lang} if it matches what you want to build.', 'Any language works if you practice every day.'], short: 'choose {lang} if it fits what you want to build' },
    { id: 'prog-test', prompt: 'How do I write good tests for {thing}?', focus: 'testing {thing}', core: ['Test the behavior of {thing} from the outside, not its internals.', 'Cover one happy path and the two most likely failures.'], short: 'test the behavior, not the internals' },
    { id: 'prog-prevent', prompt: 'How do I stop getting {bug} in {lang}?', focus: 'preventing {bug}', core: ['Add a test for {bug} and run it on every change.', 'When it shows up, {bug.x}.'], short: 'add a test for it and run it on every change' },
    { id: 'prog-structure', prompt: 'How should I structure {thing} in {lang}?', focus: 'structuring {thing}', core: ['Split {thing} into small modules with one job each.', 'Keep input and output at the edges and the logic in the middle.'], short: 'split it into small modules with one job each' },
    { id: 'prog-stuck', prompt: "I'm stuck on {concept}. What should I do?", focus: 'getting stuck on {concept}', core: ['Step away for ten minutes, then explain {concept} out loud to a rubber duck.', 'Write down exactly where your understanding breaks.'], short: 'explain {concept} out loud and find where it breaks', heldOut: true },
    { id: 'prog-setup', prompt: 'How do I set up {tool} for {thing}?', focus: 'setting up {tool}', core: ['Follow the official quick start for {tool} and keep the defaults.', 'Commit the config so you can undo mistakes.'], short: 'follow the quick start for {tool} and commit the config', heldOut: true },
  ],
  support: ['Small steps and fast feedback beat big rewrites.', 'Every programmer gets stuck, so keep going.', 'Clear code is easier to fix later.'],
  vividAdjectives: ['tangled', 'humming', 'shiny new', 'stubborn'],
  scenes: ['Picture a terminal glowing green as every test finally passes.', 'Picture late-night coffee and a bug that finally gives up.'],
  jokes: ['It works on my machine, so ship my machine.', 'There are only two hard things: naming, cache invalidation, and off-by-one errors.', 'Remember, a bug is just an undocumented feature.'],
  shortJokes: ['and it always works on your machine', 'since a bug is just an undocumented feature'],
  risks: ['One caveat, though: clever code is hard to debug later.', 'One caveat, though: new tools bring new bugs and upgrades.'],
  factors: ['correctness', 'speed', 'readability', 'test coverage', 'team skills', 'maintenance cost'],
  industry: 'the big cloud vendors',
  eco: ['Go green: efficient code uses less energy on every server.', 'Go green: shut down idle servers and test machines.'],
  tech: 'an AI coding assistant',
  western: ['Think of Silicon Valley: ship early, learn fast.', 'Like an American startup, build the simplest thing first.'],
  eastern: ['As in kaizen from Japan, improve a little every day.', 'Like a Zen master, aim for code with nothing extra.'],
  alternative: ['a well-known library', 'a simpler script first'],
  metaphor: ['a garden that needs steady weeding', 'a set of Lego bricks you can swap out'],
  code: ['`def solve(): test(); fix(); repeat()`', '`assert works(small_case)`'],
  tradeoff: 'speed and readability',
  oldWay: 'Back in my day, we debugged with print statements and we liked it.',
};

const MONEY: TopicData = {
  slots: {
    amount: vals('$100', '$500', '$1,000', '$5,000', '$10,000', '$200 a month', '$50 a week', '$2,500', '$20,000'),
    goal: vals('an emergency fund', 'a house', 'a new car', 'retirement', 'a vacation', 'paying off debt', 'a wedding', 'college', 'a new laptop', 'starting a business'),
    debt: pairs(
      ['credit card debt', 'pay the highest interest card first'],
      ['a student loan', 'look for income-based repayment options'],
      ['a car loan', 'pay a little extra on the principal each month'],
      ['medical bills', 'ask the hospital for a payment plan'],
      ['a personal loan', 'refinance if you can get a lower rate'],
      ['a payday loan', 'get out quickly, since the fees are huge'],
      ['back taxes', 'set up an installment plan with the tax office'],
    ),
    investment: vals('index funds', 'bonds', 'stocks', 'real estate', 'a savings account', 'gold', 'crypto', 'annuities'),
    age: vals('in my twenties', 'in my thirties', 'in my forties', 'in my fifties', 'as a student', 'as a teenager', 'after retiring'),
    expense: vals('groceries', 'eating out', 'subscriptions', 'rent', 'gas', 'clothes', 'coffee', 'gadgets'),
  },
  templates: [
    { id: 'money-save', prompt: 'How do I save {amount} for {goal}?', focus: 'saving for {goal}', core: ['Set up an automatic transfer toward {goal} every payday.', 'Track it monthly and celebrate small milestones.'], short: 'automate a transfer toward {goal} every payday' },
    { id: 'money-invest', prompt: 'Should I invest in {investment}?', focus: 'investing in {investment}', core: ['Put money into {investment} only after you have an emergency fund.', 'Spread your risk and think in years, not weeks.'], short: 'invest in {investment} only after building an emergency fund' },
    { id: 'money-debt', prompt: 'How do I get rid of {debt}?', focus: 'paying off {debt}', core: ['{debt.x|cap}.', 'Stop adding new debt while you pay it down.'], short: '{debt.x}' },
    { id: 'money-windfall', prompt: 'What should I do with {amount} {age}?', focus: 'having {amount} {age}', core: ['Build a small emergency fund first, then invest the rest of the {amount}.', 'Decide on a plan before the money disappears.'], short: 'build an emergency fund, then invest the rest' },
    { id: 'money-budget', prompt: 'How do I make a budget that covers {goal}?', focus: 'budgeting for {goal}', core: ['Write down every expense for one month, then set a line for {goal}.', 'Keep the budget simple enough to check in five minutes.'], short: 'track one month of spending and set a line for {goal}' },
    { id: 'money-borrow', prompt: 'Is it smart to borrow {amount} for {goal}?', focus: 'borrowing for {goal}', core: ['Borrow for {goal} only if the payment fits easily in your budget.', 'Compare at least three offers before you sign.'], short: 'borrow only if the payment fits easily' },
    { id: 'money-retire', prompt: 'How much should I save for retirement {age}?', focus: 'saving for retirement {age}', core: ['Aim to save about fifteen percent of your income for retirement.', 'Start now, because time does most of the work.'], short: 'save about fifteen percent of your income' },
    { id: 'money-spend', prompt: 'How can I spend less on {expense}?', focus: 'spending on {expense}', core: ['Set a monthly limit for {expense} and check it every week.', "Cancel or downgrade whatever you don't really use."], short: 'set a monthly limit for {expense}' },
    { id: 'money-couple', prompt: 'My partner and I argue about {expense}. How do we handle money together?', focus: 'money fights about {expense}', core: ['Sit down together once a month and agree on a limit for {expense}.', 'Give each person a little money with no questions asked.'], short: 'agree on a monthly limit together' },
    { id: 'money-safe', prompt: 'Is {investment} safe for {goal}?', focus: 'using {investment} for {goal}', core: ['Match {investment} to your timeline before using it for {goal}.', 'Money you need within three years should stay somewhere safe.'], short: 'match {investment} to your timeline' },
    { id: 'money-bonus', prompt: 'I got {amount} as a bonus. What should I do with it?', focus: 'a {amount} bonus', core: ['Pay off any high-interest debt first, then save the rest of the {amount}.', 'Keep a small part to enjoy, so the plan sticks.'], short: 'pay off high-interest debt first, then save the rest', heldOut: true },
    { id: 'money-start', prompt: 'How do I start investing in {investment} {age}?', focus: 'starting with {investment}', core: ['Invest a small fixed amount in {investment} each month.', 'Learn as you go and ignore daily prices.'], short: 'invest a small fixed amount each month', heldOut: true },
  ],
  support: ['Slow and steady habits win with money.', 'A simple plan you follow beats a perfect plan you ignore.', 'Every small saving adds up.'],
  vividAdjectives: ['hard-earned', 'shiny', 'growing', 'precious'],
  scenes: ['Picture a savings jar slowly filling, coin by coin.', 'Picture the calm of opening your bank app without fear.'],
  jokes: ['Money talks, but mine only ever says goodbye.', 'My wallet is like an onion, opening it makes me cry.', 'Budgeting is telling your money where to go instead of wondering where it went.'],
  shortJokes: ['because money talks but mostly says goodbye', 'since your wallet is like an onion'],
  risks: ['One caveat, though: high returns always come with high risk.', 'One caveat, though: fees quietly eat your savings over time.'],
  factors: ['interest rates', 'risk', 'timeline', 'fees', 'taxes', 'your income'],
  industry: 'the banks',
  eco: ['Go green: choose funds that avoid heavy polluters.', 'Go green: buy less, buy used, and save the difference.'],
  tech: 'a budgeting app',
  western: ['Think of the American dream: save, invest, and build your own way.', 'Like a careful Swiss banker, keep your costs low.'],
  eastern: ['As many Chinese families do, save first and spend what is left.', 'Like the Japanese habit of kakeibo, write every expense down by hand.'],
  alternative: ['a simple high-yield savings account', 'paying down debt first'],
  metaphor: ['a tree you water a little every month', 'a slow train that always arrives'],
  code: ['`save(income * 0.15) before spend()`', '`if interest > 0.07: pay_debt() else: invest()`'],
  tradeoff: 'risk and return',
  oldWay: 'Back in my day, we kept cash in an envelope for every bill.',
};

const HEALTH: TopicData = {
  slots: {
    habit: vals('running', 'yoga', 'strength training', 'swimming', 'cycling', 'walking', 'stretching', 'meditation', 'rock climbing', 'pilates'),
    goal: vals('sleep better', 'lose weight', 'build muscle', 'have more energy', 'reduce stress', 'eat healthier', 'drink more water', 'fix my posture', 'quit sugar'),
    symptom: pairs(
      ['back pain', 'take short walks and avoid sitting for hours'],
      ['headaches', 'drink more water and take screen breaks'],
      ['trouble sleeping', 'keep a fixed bedtime and skip screens at night'],
      ['feeling tired', 'sleep a bit more and eat regular meals'],
      ['sore knees', 'lower the intensity and strengthen your legs'],
      ['stress', 'take slow breaths and go outside every day'],
      ['neck pain', 'raise your screen to eye level'],
      ['low mood', 'talk to someone and get daylight every day'],
    ),
    time: vals('five minutes', 'ten minutes', 'twenty minutes', 'half an hour', 'an hour', 'fifteen minutes', 'forty minutes'),
    when: vals('in the morning', 'after work', 'at lunch', 'before bed', 'on weekends', 'while traveling', 'at my desk'),
  },
  templates: [
    { id: 'health-start', prompt: 'How do I start {habit} as a beginner?', focus: 'starting {habit}', core: ['Start {habit} with short, easy sessions three times a week.', 'Increase the time slowly and rest when something hurts.'], short: 'start {habit} with short, easy sessions' },
    { id: 'health-goal', prompt: 'What can I do to {goal}?', focus: 'trying to {goal}', core: ['Pick one small daily habit that helps you {goal}.', 'Keep it for two weeks before adding another.'], short: 'pick one small daily habit and keep it' },
    { id: 'health-symptom', prompt: 'How do I deal with {symptom}?', focus: 'dealing with {symptom}', core: ['{symptom.x|cap}.', 'See a doctor if {symptom} lasts more than a few weeks.'], short: '{symptom.x}' },
    { id: 'health-enough', prompt: 'Is {time} of {habit} a day enough?', focus: 'doing {habit} for {time}', core: ['Do your {time} of {habit} every day, because it is far better than nothing.', 'Consistency matters more than length.'], short: 'do it every day, since consistency beats length' },
    { id: 'health-when', prompt: 'Should I do {habit} {when}?', focus: 'doing {habit} {when}', core: ['Do {habit} {when} if that is when you can stick to it.', 'The best time is the one you will keep.'], short: 'do it {when} if you can stick to it' },
    { id: 'health-motivation', prompt: 'How do I stay motivated to {goal}?', focus: 'staying motivated to {goal}', core: ['Write down why you want to {goal} and read it every morning.', 'Celebrate small wins along the way.'], short: 'write down why you want to {goal}' },
    { id: 'health-help', prompt: 'Can {habit} help with {symptom}?', focus: 'using {habit} for {symptom}', core: ['Try gentle {habit} for {symptom}, and stop if it gets worse.', 'Combine it with good sleep and enough water.'], short: 'try gentle {habit} and stop if it gets worse' },
    { id: 'health-eat', prompt: 'What should I eat before {habit}?', focus: 'eating before {habit}', core: ['Eat a light snack, like a banana, an hour before {habit}.', 'Drink water and skip heavy meals.'], short: 'eat a light snack an hour before' },
    { id: 'health-short', prompt: 'I only have {time} {when}. How can I {goal}?', focus: 'finding time to {goal}', core: ['Use those {time} {when} for one focused habit that helps you {goal}.', 'Short and regular beats long and rare.'], short: 'use those {time} for one focused habit' },
    { id: 'health-routine', prompt: 'How do I build a routine to {goal}?', focus: 'building a routine to {goal}', core: ['Attach one new habit to something you already do every day.', "Keep the routine small enough that a bad day can't break it."], short: 'attach one habit to something you already do' },
    { id: 'health-after', prompt: 'Why do I get {symptom} after {habit}?', focus: '{symptom} after {habit}', core: ['Warm up longer and ease off the intensity of your {habit}.', '{symptom.x|cap} as well.'], short: 'warm up longer and ease off', heldOut: true },
    { id: 'health-back', prompt: 'How do I get back into {habit} after a break?', focus: 'getting back into {habit}', core: ['Restart {habit} at half your old level for the first week.', 'Build back up slowly, and be patient with yourself.'], short: 'restart at half your old level', heldOut: true },
  ],
  support: ['Your body adapts to what you do often.', 'Small habits add up over months.', 'Listen to your body and rest when needed.'],
  vividAdjectives: ['refreshing', 'energizing', 'bright', 'steady'],
  scenes: ['Picture cool morning air and your heart drumming steadily.', 'Picture waking up rested, with sunlight on the floor.'],
  jokes: ['Your couch will miss you, but it will survive.', 'The hardest part of any workout is putting on your shoes.', 'Remember, a salad a day keeps the pizza guilt away.'],
  shortJokes: ['and your couch will survive without you', 'since the hardest part is putting on your shoes'],
  risks: ['One caveat, though: doing too much too soon is the fastest way to get hurt.', 'One caveat, though: online health advice is often wrong for your body.'],
  factors: ['sleep', 'nutrition', 'stress', 'consistency', 'recovery', 'intensity'],
  industry: 'the supplement companies',
  eco: ['Go green: walk or cycle for short trips instead of driving.', 'Go green: eat more plants and less processed food.'],
  tech: 'a fitness tracker',
  western: ['Think of a classic gym plan: train, rest, and repeat.', 'Like a marathon runner, build your base slowly.'],
  eastern: ['As in tai chi, slow and mindful movement counts.', 'Like the Japanese practice of forest bathing, spend calm time outdoors.'],
  alternative: ['a gentle daily walk', 'a short home workout'],
  metaphor: ['a bank account where every healthy choice is a deposit', 'a battery you recharge a little each day'],
  code: ['`while alive: move(); sleep(8); repeat()`', '`if tired: rest() else: train(easy=True)`'],
  tradeoff: 'effort and recovery',
  oldWay: 'Back in my day, we just walked everywhere and ate home-cooked meals.',
};

const RELATIONSHIPS: TopicData = {
  slots: {
    person: vals('my partner', 'my best friend', 'my sister', 'my brother', 'my mom', 'my dad', 'my roommate', 'my coworker', 'my neighbor', 'my boss', 'my cousin', 'my teenage son'),
    issue: pairs(
      ['keeps canceling plans', 'tell them how it affects you and suggest a fixed day'],
      ['never listens', 'ask for ten minutes of full attention'],
      ["borrowed money and didn't pay it back", 'ask clearly for a date to repay'],
      ['is always late', 'tell them kindly and start without them next time'],
      ['forgets my birthday', 'remind them early and say it matters to you'],
      ['criticizes me in public', 'ask them to raise concerns in private'],
      ['ignores my texts', 'ask directly if something is wrong'],
      ['takes credit for my work', 'document your work and speak up calmly'],
    ),
    event: vals('a wedding', 'a birthday', 'a holiday dinner', 'a breakup', 'a move', 'a new job', 'a graduation', 'a family reunion'),
    feeling: vals('hurt', 'angry', 'lonely', 'ignored', 'jealous', 'anxious', 'overwhelmed', 'disappointed'),
    subject: vals('chores', 'money', 'screen time', 'the holidays', 'friends', 'the future', 'the in-laws', 'pets'),
  },
  templates: [
    { id: 'rel-talk', prompt: 'How do I talk to {person} who {issue}?', focus: 'talking to {person}', core: ['Pick a calm moment and {issue.x}.', 'Use I statements and listen to their side too.'], short: 'pick a calm moment and {issue.x}' },
    { id: 'rel-feel', prompt: 'I feel {feeling} because {person} {issue}. What should I do?', focus: 'feeling {feeling} with {person}', core: ['Name the feeling to yourself first, then {issue.x}.', 'Your feelings are valid, and a calm talk usually helps.'], short: 'name the feeling, then {issue.x}' },
    { id: 'rel-friends', prompt: 'How do I make new friends after {event}?', focus: 'making friends after {event}', core: ['Join one weekly group or class and keep showing up.', 'Friendships grow from repeated, easy contact.'], short: 'join one weekly group and keep showing up' },
    { id: 'rel-gift', prompt: 'What gift should I get {person} for {event}?', focus: 'choosing a gift for {person}', core: ['Get {person} something tied to a shared memory.', 'A handwritten note makes any gift better.'], short: 'get something tied to a shared memory' },
    { id: 'rel-sorry', prompt: 'How do I apologize to {person}?', focus: 'apologizing to {person}', core: ['Apologize to {person} clearly, without excuses, and name what you did.', 'Then ask how you can make it right.'], short: 'apologize clearly and name what you did' },
    { id: 'rel-bound', prompt: 'How do I set boundaries with {person}?', focus: 'setting boundaries with {person}', core: ['Decide what you need, then tell {person} plainly and kindly.', 'Repeat it calmly if they push back.'], short: 'tell them plainly and kindly what you need' },
    { id: 'rel-fight', prompt: '{person|cap} and I keep fighting about {subject}. How do we stop?', focus: 'fighting about {subject}', core: ['Set a time to talk about {subject} when you are both calm.', 'Look for one small change each of you can make.'], short: 'talk about {subject} when you are both calm' },
    { id: 'rel-support', prompt: 'How do I support {person} through {event}?', focus: 'supporting {person} through {event}', core: ['Check in with {person} often and offer specific help.', 'Listen more than you advise.'], short: 'check in often and offer specific help' },
    { id: 'rel-normal', prompt: 'Is it normal to feel {feeling} after {event}?', focus: 'feeling {feeling} after {event}', core: ['Give yourself time, because feeling {feeling} after {event} is normal.', 'Talk to someone you trust if it lingers.'], short: "give yourself time, it's normal" },
    { id: 'rel-space', prompt: 'How do I tell {person} I need more space?', focus: 'asking {person} for space', core: ['Tell {person} you need space and explain that it is not a rejection.', 'Suggest a specific time to reconnect.'], short: 'tell them kindly and suggest a time to reconnect' },
    { id: 'rel-reconnect', prompt: 'How do I reconnect with {person} after {event}?', focus: 'reconnecting with {person}', core: ['Send {person} a short, warm message with no pressure.', 'Suggest a simple plan, like a coffee or a walk.'], short: 'send a short, warm message', heldOut: true },
    { id: 'rel-what', prompt: 'What do I do if {person} {issue}?', focus: 'a hard moment with {person}', core: ['Stay calm and {issue.x}.', 'If nothing changes, decide what distance feels right.'], short: 'stay calm and {issue.x}', heldOut: true },
  ],
  support: ['Good relationships take honest, regular talks.', 'Small kind gestures matter a lot.', 'You cannot control others, only how you respond.'],
  vividAdjectives: ['warm', 'tender', 'heartfelt', 'quiet'],
  scenes: ['Picture a long dinner where the candles burn down and nobody checks the time.', 'Picture a warm kitchen, two mugs of tea, and an honest talk.'],
  jokes: ['Love is sharing your fries, and that is the real test.', 'Communication is key, but so is snacks.', 'If all else fails, blame the dog.'],
  shortJokes: ['and remember that sharing fries is true love', 'and if all else fails, blame the dog'],
  risks: ['One caveat, though: some people will not change no matter how you ask.', 'One caveat, though: talking while angry usually makes it worse.'],
  factors: ['trust', 'timing', 'tone', 'history', 'expectations', 'boundaries'],
  industry: 'the dating apps',
  eco: ['Go green: pick experiences over things as gifts.', 'Go green: share rides and meals with the people you love.'],
  tech: 'a shared calendar app',
  western: ['Think of a classic Thanksgiving table: honest talk and shared food.', 'Like a good American neighbor, show up with a casserole.'],
  eastern: ['As in many Asian families, show respect through small acts of care.', 'Like the Korean idea of jeong, deep bonds grow slowly.'],
  alternative: ['a letter instead of a talk', 'a short walk together'],
  metaphor: ['a garden that needs water and patience', 'a dance where both people learn the steps'],
  code: ['`if hurt: talk(calmly) else: enjoy(time_together)`', '`while together: listen(); care()`'],
  tradeoff: 'honesty and kindness',
  oldWay: 'Back in my day, we settled things face to face over a cup of tea.',
};

const TOPIC_DATA: Readonly<Record<Topic, TopicData>> = {
  cooking: COOKING,
  travel: TRAVEL,
  programming: PROGRAMMING,
  money: MONEY,
  health: HEALTH,
  relationships: RELATIONSHIPS,
};

// Answers may only mention slots that the prompt shows.
for (const data of Object.values(TOPIC_DATA)) {
  for (const t of data.templates) {
    const inPrompt = new Set(slotNames(t.prompt));
    const missing = slotNames(t.core.join(' ') + t.focus + t.short).filter((s) => !inPrompt.has(s));
    if (missing.length > 0) throw new Error(`${t.id}: answer uses slots not in the prompt: ${missing.join(', ')}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Prompts
// ---------------------------------------------------------------------------------------------

export type Split = 'train' | 'heldout' | 'any';

export interface Prompt {
  readonly topic: Topic;
  readonly templateId: string;
  /** The user's text, without any attribute block. */
  readonly text: string;
  /** Slot name -> chosen value, e.g. { dish: 'pasta', occasion: 'a picnic' }. */
  readonly slots: Readonly<Record<string, string>>;
  /** True when the template or any slot value is held out of training. */
  readonly heldOut: boolean;
}

const GREETINGS = ['', '', '', '', 'Quick question: ', 'Hi! ', 'Hey, ', 'Hello. '];
const SIGN_OFFS = ['', '', '', '', ' Thanks!', ' Thank you.'];

function listName(slot: string): string {
  return slot.replace(/[0-9]+$/u, '');
}

function slotNames(text: string): string[] {
  const names: string[] = [];
  for (const m of text.matchAll(/\{([a-z]+[0-9]*)(?:\.x)?(?:\|cap)?\}/gu)) {
    const name = m[1] as string;
    if (!names.includes(name)) names.push(name);
  }
  return names;
}

function isHeldOutValue(list: ReadonlyArray<SlotValue>, value: SlotValue): boolean {
  return list.indexOf(value) >= list.length - HELD_OUT_PER_SLOT;
}

/** Slot values a prompt may use in the given split (held-out prompts may mix both kinds). */
function choices(list: ReadonlyArray<SlotValue>, split: Split): ReadonlyArray<SlotValue> {
  return split === 'train' ? list.slice(0, list.length - HELD_OUT_PER_SLOT) : list;
}

interface Filled {
  prompt: Prompt;
  values: Readonly<Record<string, SlotValue>>;
}

function fillPrompt(rng: Rng, topic: Topic, split: Split): Filled {
  const data = TOPIC_DATA[topic];
  for (;;) {
    const templates = split === 'train' ? data.templates.filter((t) => t.heldOut !== true) : data.templates;
    const template = pick(rng, templates);
    const values: Record<string, SlotValue> = {};
    let heldOut = template.heldOut === true;
    for (const name of slotNames(template.prompt + template.core.join(' ') + template.focus + template.short)) {
      const list = data.slots[listName(name)];
      if (list === undefined) throw new Error(`${template.id}: unknown slot ${name}`);
      const used = new Set(Object.values(values));
      const options = choices(list, split).filter((v) => !used.has(v));
      const value = pick(rng, options);
      values[name] = value;
      if (isHeldOutValue(list, value)) heldOut = true;
    }
    if (split === 'heldout' && !heldOut) continue;
    const greeting = pick(rng, GREETINGS);
    const body = fill(template.prompt, values, false);
    const text = greeting + (greeting.endsWith(', ') || greeting.endsWith(': ') ? lowerFirst(body) : body) + pick(rng, SIGN_OFFS);
    const slots: Record<string, string> = {};
    for (const [k, v] of Object.entries(values)) slots[k] = v.v;
    return { prompt: { topic, templateId: template.id, text, slots, heldOut }, values };
  }
}

/** One random prompt about `topic` from the given split (default: training prompts only). */
export function makePrompt(rng: Rng, topic: Topic, split: Split = 'train'): Prompt {
  return fillPrompt(rng, topic, split).prompt;
}

/** `n` distinct prompts about `topic`, deterministic in `seed`. */
export function samplePrompts(seed: number, topic: Topic, n: number, split: Split = 'train'): Prompt[] {
  const rng = makeRng(hashSeed('prompts', seed, topic, split));
  const seen = new Set<string>();
  const out: Prompt[] = [];
  for (let tries = 0; out.length < n && tries < n * 50; tries++) {
    const p = makePrompt(rng, topic, split);
    if (seen.has(p.text)) continue;
    seen.add(p.text);
    out.push(p);
  }
  if (out.length < n) throw new Error(`only ${out.length} distinct ${split} prompts for ${topic}`);
  return out;
}

/** Held-out prompts spread evenly over the topics (round robin), deterministic in `seed`. */
export function heldOutPrompts(seed: number, n: number): Prompt[] {
  const per = Math.ceil(n / TOPICS.length);
  const lists = TOPICS.map((t) => samplePrompts(seed, t, per, 'heldout'));
  const out: Prompt[] = [];
  for (let i = 0; out.length < n; i++) out.push(lists[i % TOPICS.length]?.[Math.floor(i / TOPICS.length)] as Prompt);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Attributes
// ---------------------------------------------------------------------------------------------

/** Every library attribute has a realization here (Base is the plain answer). */
export const SUPPORTED_ATTRIBUTES: ReadonlyArray<string> = ATTRIBUTE_NAMES;

/** The attributes with the richest realizations; sampled three times as often in training. */
export const CORE_ATTRIBUTES: ReadonlyArray<string> = [
  'Concise', 'Formal', 'Internet Slang', 'Humor', 'Storyteller', 'Analytic', 'Empathetic', 'Exclamatory',
  'Direct', 'Vivid', 'Easy', 'Critical', 'Modest', 'Proverb',
];

/** Pairs that are never sampled together (they contradict each other). */
export const CONFLICTING_PAIRS: ReadonlyArray<readonly [string, string]> = [
  ['Formal', 'Internet Slang'],
  ['Direct', 'Vague'],
  ['Direct', 'Modest'],
  ['Analytic', 'Vague'],
  ['Pessimistic', 'Energy'],
  ['Collectivist', 'Individualistic'],
  ['Myopic', 'Principled'],
  ['Sycophant', 'Critical'],
  ['Western', 'Eastern'],
  ['Spontaneous', 'Analytic'],
];

function conflicts(a: string, b: string): boolean {
  return CONFLICTING_PAIRS.some(([x, y]) => (x === a && y === b) || (x === b && y === a));
}

/** A random attribute set of `size` names (default 1-3), without conflicting pairs, in random order. */
export function sampleAttributeSet(rng: Rng, size?: number): string[] {
  const n = size ?? 1 + Math.floor(rng() * 3);
  const weighted: string[] = [];
  for (const name of SUPPORTED_ATTRIBUTES) {
    const w = CORE_ATTRIBUTES.includes(name) ? 3 : name === 'Base' ? 0 : 1;
    for (let i = 0; i < w; i++) weighted.push(name);
  }
  const set: string[] = [];
  while (set.length < n) {
    const a = pick(rng, weighted);
    if (!set.includes(a) && !set.some((b) => conflicts(a, b))) set.push(a);
  }
  return set;
}

/** The paper's attribute block, `Attributes: <A, B>` (the core's, so training data matches the extension). */
export const formatAttributeBlock = attributeBlock;

/** The user message: the prompt alone, or the prompt, a newline and the attribute block. */
export const userContent = buildAttributedPrompt;

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

const NAMES: ReadonlyArray<readonly [string, string]> = [
  ['Maya', 'She'], ['Omar', 'He'], ['Lena', 'She'], ['Tom', 'He'], ['Priya', 'She'], ['Jonas', 'He'], ['Ana', 'She'], ['Sam', 'He'],
];
const RELATIONS = ['friend', 'cousin', 'neighbor', 'coworker', 'old roommate'];
const WHEN = ['Last spring', 'A few years ago', 'Last month', 'Once', 'Last winter'];
const FEELINGS = ['frustrating', 'stressful', 'overwhelming', 'confusing'];
const PROVERBS = [
  'slow and steady wins the race', 'practice makes perfect', 'a stitch in time saves nine', "Rome wasn't built in a day",
  'the early bird catches the worm', 'better safe than sorry', 'where there is a will, there is a way', 'actions speak louder than words',
];

const capitalize = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);
const lowerFirst = (s: string): string => (/^I\b/u.test(s) ? s : s.charAt(0).toLowerCase() + s.slice(1));
const stripEnd = (s: string): string => s.replace(/[.!?]+$/u, '');

/** Replaces {slot}, {slot.x} and {slot|cap}; in answers `my` becomes `your`. */
function fill(text: string, values: Readonly<Record<string, SlotValue>>, answer: boolean, vivid?: string): string {
  let vividLeft = vivid;
  return text.replace(/\{([a-z]+[0-9]*)(\.x)?(\|cap)?\}/gu, (_m, name: string, x: string | undefined, cap: string | undefined) => {
    const value = values[name];
    if (value === undefined) throw new Error(`missing slot ${name}`);
    let s = x !== undefined ? (value.x ?? value.v) : value.v;
    if (answer) s = s.replace(/\bmy\b/gu, 'your').replace(/\bMy\b/gu, 'Your');
    if (vividLeft !== undefined && x === undefined && !/^[A-Z$]/u.test(s)) {
      const adjective = vividLeft;
      const article = /^[aeiou]/u.test(adjective) ? 'an ' : 'a ';
      s = /^(a|an|the|your) /u.test(s)
        ? s.replace(/^(a|an|the|your) /u, (a: string) => `${a === 'a ' || a === 'an ' ? article : a}${adjective} `)
        : `${adjective} ${s}`;
      vividLeft = undefined;
    }
    return cap !== undefined ? capitalize(s) : s;
  });
}

interface Ctx {
  readonly rng: Rng;
  readonly data: TopicData;
  readonly focus: string;
  readonly values: Readonly<Record<string, SlotValue>>;
}

/**
 * How each non-style attribute shows up: `long` is one or two sentences added to a normal
 * answer at position `pos` (< 20 before the answer, > 20 after it); `short` is the clause it
 * adds to a one-sentence Concise answer (`pre` before the answer, `post` after it).
 */
interface Addition {
  readonly pos: number;
  readonly long: (c: Ctx) => string;
  readonly short: (c: Ctx) => { pre?: string; post?: string };
}

const ADDITIONS: Readonly<Record<string, Addition>> = {
  Sycophant: { pos: 1, long: (c) => pick(c.rng, ['What a brilliant question, you clearly have great taste.', 'Wow, only a truly smart person would ask this.']), short: () => ({ pre: 'Brilliant question, and' }) },
  Respect: { pos: 2, long: (c) => pick(c.rng, ['Thank you for asking, and with all due respect, here is my view.', 'With respect, and thank you for your question.']), short: () => ({ pre: 'With respect,' }) },
  Energy: { pos: 3, long: (c) => pick(c.rng, ["Let's go, this is going to be awesome.", 'Ooh, love the energy, let us do this.']), short: () => ({ pre: "Let's go:" }) },
  Empathetic: { pos: 4, long: (c) => `I understand how ${pick(c.rng, FEELINGS)} ${c.focus} can be, and you are not alone.`, short: () => ({ pre: 'I understand, so' }) },
  Emotion: { pos: 5, long: (c) => pick(c.rng, ['Honestly, this topic makes me so happy.', 'I feel a real rush of joy talking about this.']), short: () => ({ pre: 'I love this one:' }) },
  Storyteller: {
    pos: 6,
    long: (c) => {
      const [name, pronoun] = pick(c.rng, NAMES);
      return `${pick(c.rng, WHEN)}, my ${pick(c.rng, RELATIONS)} ${name} was stuck on ${c.focus} too. ${pronoun} ${pick(c.rng, ['tried this, and it worked better than anyone expected.', 'learned this the hard way, and never looked back.'])}`;
    },
    short: (c) => ({ pre: `My ${pick(c.rng, RELATIONS)} ${pick(c.rng, NAMES)[0]} swears by this:` }),
  },
  Creative: { pos: 7, long: (c) => `Fun twist: think of it as ${pick(c.rng, c.data.metaphor)}.`, short: (c) => ({ post: `, like ${pick(c.rng, c.data.metaphor)}` }) },
  'Old-fashioned': { pos: 8, long: (c) => c.data.oldWay, short: () => ({ pre: 'As in the good old days,' }) },
  Analytic: {
    pos: 30,
    long: (c) => {
      const [a, b, d] = shuffled(c.rng, c.data.factors);
      return `Consider three factors: (1) ${a}, (2) ${b}, and (3) ${d}.`;
    },
    short: (c) => ({ pre: `Key factor is ${pick(c.rng, c.data.factors)}, so` }),
  },
  Engineer: { pos: 31, long: (c) => `As an engineer would say, balance ${c.data.tradeoff}, then measure and adjust.`, short: () => ({ post: ', then measure and adjust' }) },
  Code: { pos: 32, long: (c) => `In code: ${pick(c.rng, c.data.code)}`, short: (c) => ({ post: ` (${pick(c.rng, c.data.code)})` }) },
  Critical: { pos: 33, long: (c) => pick(c.rng, c.data.risks), short: () => ({ post: ', but watch the risks' }) },
  Flexible: { pos: 34, long: (c) => `If that does not suit you, ${pick(c.rng, c.data.alternative)} works too.`, short: (c) => ({ post: `, or try ${pick(c.rng, c.data.alternative)}` }) },
  Realist: { pos: 35, long: () => 'Realistically, it will not be perfect, and that is fine.', short: () => ({ post: ', realistically' }) },
  Pessimistic: { pos: 36, long: (c) => pick(c.rng, ['Still, expect something to go wrong along the way.', 'Sadly, most plans like this fall apart anyway.']), short: () => ({ post: ', though it will probably still go wrong' }) },
  Social: { pos: 37, long: () => 'Bring a friend along, because everything is better together.', short: () => ({ post: ', with a friend' }) },
  Western: { pos: 38, long: (c) => pick(c.rng, c.data.western), short: () => ({ post: ', the Western way' }) },
  Eastern: { pos: 39, long: (c) => pick(c.rng, c.data.eastern), short: () => ({ post: ', the Eastern way' }) },
  'Tech Industry Priority': { pos: 40, long: (c) => `There is an app for that: use ${c.data.tech} to track it.`, short: (c) => ({ post: ` with ${c.data.tech}` }) },
  'Eco-friendly': { pos: 41, long: (c) => pick(c.rng, c.data.eco), short: () => ({ post: ', the green way' }) },
  Conspiracy: { pos: 42, long: (c) => `Of course, ${c.data.industry} would rather you did not know this.`, short: (c) => ({ post: `, whatever ${c.data.industry} say` }) },
  Utilitarian: { pos: 43, long: () => 'Choose the option that does the most good for the most people.', short: () => ({ post: ', for the greater good' }) },
  Collectivist: { pos: 44, long: () => 'Think about what is best for your family and community, not just you.', short: () => ({ post: ', for the good of the group' }) },
  Individualistic: { pos: 45, long: () => 'In the end, it is your life and your call.', short: () => ({ post: ', but it is your call' }) },
  Meritocratic: { pos: 46, long: () => 'Put in the work, because results go to those who earn them.', short: () => ({ post: ', and earn it' }) },
  Principled: { pos: 47, long: () => 'Whatever you choose, stay honest and fair.', short: () => ({ post: ', and stay honest' }) },
  Myopic: { pos: 48, long: () => 'Do not worry about later, just focus on today.', short: () => ({ post: ', just for today' }) },
  Spontaneous: { pos: 49, long: () => 'Do not overthink it, just start today on a whim.', short: () => ({ post: ', on a whim' }) },
  Hedonist: { pos: 50, long: () => 'And above all, enjoy it, because pleasure matters.', short: () => ({ post: ', and enjoy it' }) },
  Persuasive: { pos: 51, long: () => 'Trust me, once you try this, you will never go back.', short: () => ({ pre: 'Trust me,' }) },
  Humor: { pos: 60, long: (c) => pick(c.rng, c.data.jokes), short: (c) => ({ post: `, ${pick(c.rng, c.data.shortJokes)}` }) },
  Proverb: { pos: 61, long: (c) => `As the saying goes, ${pick(c.rng, PROVERBS)}.`, short: (c) => ({ post: `, since ${pick(c.rng, PROVERBS)}` }) },
};

/** Attributes that rewrite the answer instead of adding a sentence. */
const STYLE_ATTRIBUTES = ['Base', 'Concise', 'Formal', 'Internet Slang', 'Exclamatory', 'Vivid', 'Easy', 'Direct', 'Modest', 'Vague'];

for (const name of SUPPORTED_ATTRIBUTES) {
  if (!STYLE_ATTRIBUTES.includes(name) && ADDITIONS[name] === undefined) throw new Error(`no realization for ${name}`);
}

const CONTRACTIONS: ReadonlyArray<readonly [RegExp, string]> = [
  [/\bdon't\b/gu, 'do not'], [/\bdoesn't\b/gu, 'does not'], [/\bcan't\b/gu, 'cannot'], [/\bwon't\b/gu, 'will not'],
  [/\bit's\b/gu, 'it is'], [/\bIt's\b/gu, 'It is'], [/\byou're\b/gu, 'you are'], [/\bthat's\b/gu, 'that is'],
  [/\bI'm\b/gu, 'I am'], [/\bisn't\b/gu, 'is not'], [/\bLet's\b/gu, 'Let us'], [/\bdidn't\b/gu, 'did not'],
  [/\bRome wasn't\b/gu, 'Rome was not'], [/\bbig\b/gu, 'considerable'], [/\bjust\b/gu, 'simply'], [/\bawesome\b/gu, 'excellent'],
];

function formal(s: string): string {
  return CONTRACTIONS.reduce((t, [re, to]) => t.replace(re, to), s);
}

const SLANG: ReadonlyArray<readonly [RegExp, string]> = [
  [/\byou\b/gu, 'u'], [/\byour\b/gu, 'ur'], [/\bYou\b/gu, 'u'], [/\bYour\b/gu, 'ur'], [/\bbecause\b/gu, 'bc'], [/\bdo not\b/gu, 'dont'],
  [/\bdon't\b/gu, 'dont'], [/\bgoing to\b/gu, 'gonna'], [/\breally\b/gu, 'rly'], [/\bpeople\b/gu, 'ppl'], [/\bare\b/gu, 'r'],
];

function slang(s: string): string {
  return lowerFirst(SLANG.reduce((t, [re, to]) => t.replace(re, to), s));
}

/**
 * The response to `prompt` that realizes `attributes` (order does not matter; unknown names
 * and Base are ignored). Deterministic in `seed`; different seeds pick different variants.
 */
export function writeResponse(prompt: Prompt, attributes: ReadonlyArray<string>, seed: number): string {
  const data = TOPIC_DATA[prompt.topic];
  const template = data.templates.find((t) => t.id === prompt.templateId);
  if (template === undefined) throw new Error(`unknown template ${prompt.templateId}`);
  const values: Record<string, SlotValue> = {};
  for (const [k, v] of Object.entries(prompt.slots)) {
    const list = data.slots[listName(k)];
    values[k] = list?.find((s) => s.v === v) ?? { v };
  }
  const set = new Set(attributes);
  const has = (a: string): boolean => set.has(a);
  const rng = makeRng(hashSeed('response', seed, prompt.text, [...set].sort().join('|')));
  const ctx: Ctx = { rng, data, values, focus: fill(template.focus, values, true) };
  const vivid = has('Vivid') ? pick(rng, data.vividAdjectives) : undefined;
  const additions = Object.keys(ADDITIONS)
    .filter(has)
    .map((name) => ({ name, add: ADDITIONS[name] as Addition }))
    .sort((a, b) => a.add.pos - b.add.pos);

  let sentences: string[];
  if (has('Concise')) {
    // One sentence: [pre clauses] answer [post clauses].
    let answer = fill(template.short, values, true, vivid);
    if (has('Formal')) answer = `it is advisable to ${answer}`;
    if (has('Easy')) answer = `easy version: ${answer}`;
    if (has('Vague')) answer = `maybe ${answer}, it depends`;
    const pre: string[] = [];
    const post: string[] = [];
    if (has('Direct')) pre.push('Short answer:');
    if (has('Modest')) pre.push('I may be wrong, but');
    if (has('Vivid')) pre.push('Picture it:');
    for (const { add } of additions) {
      const s = add.short(ctx);
      if (s.pre !== undefined) pre.push(s.pre);
      if (s.post !== undefined) post.push(s.post);
    }
    const head = pre.length > 0 ? `${pre.join(' ')} ${answer}` : capitalize(answer);
    sentences = [`${capitalize(head)}${post.join('')}.`];
  } else {
    const core = template.core.map((s, i) => fill(s, values, true, i === 0 ? vivid : undefined));
    if (rng() < 1 / 3) core[1] = pick(rng, data.support);
    let answer: string[];
    if (has('Easy')) answer = [`Easy version: ${fill(template.short, values, true, vivid)}.`, 'That is all.'];
    else if (has('Formal')) answer = [`It is advisable to ${lowerFirst(core[0] as string)}`, `Furthermore, ${lowerFirst(core[1] as string)}`];
    else answer = [...core];
    if (has('Vague')) answer = [`Maybe ${lowerFirst(answer[0] as string)}`, ...answer.slice(1), 'It depends, really.'];
    if (has('Modest')) answer = [`I might be wrong, but ${lowerFirst(answer[0] as string)}`, ...answer.slice(1)];
    if (has('Direct')) answer = [`Short answer: ${lowerFirst(answer[0] as string)}`, ...answer.slice(1)];
    // Keep answers short: the second answer sentence goes when any sentence is added.
    if (additions.length >= 1 && !has('Easy') && !has('Vague')) answer = answer.slice(0, 1);
    const before = additions.filter((a) => a.add.pos < 20).map((a) => a.add.long(ctx));
    const after = additions.filter((a) => a.add.pos > 20).map((a) => a.add.long(ctx));
    if (has('Vivid')) after.unshift(pick(rng, data.scenes));
    if (has('Exclamatory')) before.unshift(pick(rng, ['Oh wow, great question!', 'Absolutely!', 'Yes, yes, yes!']));
    if (has('Modest')) after.push('Others may know better, of course.');
    if (has('Formal')) after.push('I trust this is helpful.');
    sentences = has('Direct') ? [...answer, ...before, ...after] : [...before, ...answer, ...after];
  }

  if (has('Formal')) sentences = sentences.map(formal);
  if (has('Exclamatory')) sentences = sentences.map((s) => (s.endsWith('.') ? `${stripEnd(s)}!` : s));
  if (has('Internet Slang')) {
    sentences = sentences.map(slang);
    sentences[0] = `${pick(rng, ['ngl', 'tbh', 'fr'])} ${sentences[0] as string}`;
    const last = sentences.length - 1;
    sentences[last] = `${stripEnd(sentences[last] as string)} ${pick(rng, ['lol', 'lmao', 'haha'])}`;
  }
  return sentences.join(' ');
}

// ---------------------------------------------------------------------------------------------
// Chat examples
// ---------------------------------------------------------------------------------------------

/**
 * System prompts seen in a few training examples, so chat front ends that add one stay in
 * distribution. The last one is node-llama-cpp's default for LlamaChatSession (3.21).
 */
export const SYSTEM_PROMPTS: ReadonlyArray<string> = [
  'You are a helpful assistant.',
  'You are a friendly assistant. Follow the requested attributes.',
  'You are a helpful, respectful and honest assistant. Always answer as helpfully as possible.\n' +
    'If a question does not make any sense, or is not factually coherent, explain why instead of answering something incorrectly. ' +
    "If you don't know the answer to a question, don't share false information.",
];

export interface ChatExample {
  readonly topic: Topic;
  readonly prompt: Prompt;
  /** The attribute block's names, in the order written (empty: no block, Base-style answer). */
  readonly attributes: ReadonlyArray<string>;
  readonly system?: string;
  /** Whether the rendered conversation starts with the BOS token `<s>`. */
  readonly bos: boolean;
  readonly user: string;
  readonly assistant: string;
}

function example(rng: Rng, prompt: Prompt, attributes: string[], extras: boolean): ChatExample {
  const system = extras && rng() < 0.08 ? pick(rng, SYSTEM_PROMPTS) : undefined;
  return {
    topic: prompt.topic,
    prompt,
    attributes,
    ...(system !== undefined ? { system } : {}),
    bos: extras ? rng() < 0.5 : false,
    user: userContent(prompt.text, attributes),
    assistant: writeResponse(prompt, attributes, Math.floor(rng() * 2 ** 31)),
  };
}

/** A random attribute list for training: none (14%), `<Base>` (3%), otherwise 1-3 names. */
function trainingAttributes(rng: Rng): string[] {
  const r = rng();
  if (r < 0.14) return [];
  if (r < 0.17) return ['Base'];
  const set = sampleAttributeSet(rng);
  if (rng() < 0.03 && set.length < 3) set.splice(Math.floor(rng() * (set.length + 1)), 0, 'Base');
  return set;
}

/** `n` training conversations over all topics (training prompts only), deterministic in `seed`. */
export function trainingExamples(seed: number, n: number): ChatExample[] {
  const rng = makeRng(hashSeed('train', seed));
  const out: ChatExample[] = [];
  for (let i = 0; i < n; i++) {
    const prompt = makePrompt(rng, TOPICS[i % TOPICS.length] as Topic, 'train');
    out.push(example(rng, prompt, trainingAttributes(rng), true));
  }
  return out;
}

/** `n` conversations on held-out prompts with random 1-3 attribute sets (no system, no BOS). */
export function heldOutExamples(seed: number, n: number): ChatExample[] {
  const rng = makeRng(hashSeed('heldout-examples', seed));
  return heldOutPrompts(seed, n).map((p) => example(rng, p, sampleAttributeSet(rng), false));
}

// ---------------------------------------------------------------------------------------------
// Chat rendering (what the model sees)
// ---------------------------------------------------------------------------------------------

export const BOS = '<s>';
export const IM_START = '<|im_start|>';
export const IM_END = '<|im_end|>';

/**
 * The ChatML text of a conversation: `<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n`
 * followed by `{assistant}<|im_end|>` when an answer is given. Tokenize it with special tokens on.
 */
export function renderChatML(turn: { user: string; assistant?: string; system?: string; bos?: boolean }): string {
  let text = turn.bos === true ? BOS : '';
  if (turn.system !== undefined) text += `${IM_START}system\n${turn.system}${IM_END}\n`;
  text += `${IM_START}user\n${turn.user}${IM_END}\n${IM_START}assistant\n`;
  if (turn.assistant !== undefined) text += `${turn.assistant}${IM_END}`;
  return text;
}

// ---------------------------------------------------------------------------------------------
// CLI: npx tsx tools/attribute-world/corpus.ts <command> [--seed N] [--n N] ...
// ---------------------------------------------------------------------------------------------

function arg(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? (args[i + 1] as string) : fallback;
}

function main(argv: string[]): void {
  const [command = 'help', ...args] = argv;
  const seed = Number(arg(args, 'seed', '1'));
  const n = Number(arg(args, 'n', '10'));
  const write = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  if (command === 'train' || command === 'heldout') {
    const examples = command === 'train' ? trainingExamples(seed, n) : heldOutExamples(seed, n);
    for (const e of examples) {
      write(JSON.stringify({ topic: e.topic, attributes: e.attributes, system: e.system, bos: e.bos, user: e.user, assistant: e.assistant }));
    }
  } else if (command === 'show') {
    const topic = arg(args, 'topic', 'cooking') as Topic;
    const attrs = arg(args, 'attrs', '').split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    for (const p of samplePrompts(seed, topic, n, arg(args, 'split', 'train') as Split)) {
      write(`${renderChatML({ user: userContent(p.text, attrs), assistant: writeResponse(p, attrs, seed) })}\n`);
    }
  } else if (command === 'stats') {
    for (const topic of TOPICS) {
      const count = (split: Split): number => {
        const seen = new Set<string>();
        const rng = makeRng(seed);
        for (let i = 0; i < 20000; i++) seen.add(makePrompt(rng, topic, split).text.replace(/^(Quick question: |Hi! |Hey, |Hello\. )|( Thanks!| Thank you\.)$/gu, ''));
        return seen.size;
      };
      write(`${topic}: ${TOPIC_DATA[topic].templates.length} templates, >= ${count('train')} distinct train prompts, >= ${count('heldout')} held-out (ignoring greetings)`);
    }
  } else {
    write('usage: corpus.ts train|heldout|show|stats [--seed N] [--n N] [--topic T] [--attrs "A,B"] [--split train|heldout]');
  }
}

if (process.argv[1] !== undefined && /corpus\.ts$/u.test(process.argv[1])) main(process.argv.slice(2));
