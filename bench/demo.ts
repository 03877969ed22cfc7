/**
 * The whole method, in-process, on the fixture model (npm run demo; bash scripts/demo.sh).
 * No Ollama, no network: the llama.cpp engine in a worker thread (LlamaScorer) scores, generates
 * and embeds, through the same Personalizer, IndexingQueue and PreferenceMemory the extension runs.
 *
 *   npx tsx bench/demo.ts [--model PATH] [--user u03-length-flip] [--pairs 8] [--embedder model|hash] [--keep]
 *
 * --embedder hash uses the extension's local fallback embedder instead of the model's embeddings.
 *
 * 1. A planted user's choices are recorded into a PreferenceMemory in a temp folder (Personalizer.recordChoice).
 * 2. The IndexingQueue runs Algorithm 1 on each pair in the background, with a progress bar.
 * 3. The learned profile: attribute frequencies and topic modes (Personalizer.profileSummary).
 * 4. For two new prompts on different topics: the retrieved attributes and why, then a
 *    personalized generation next to the unpersonalized one.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { ATTRIBUTE_NAMES, type Embedder, type GenerationOptions } from '../src/core';
import { LocalHashEmbedder } from '../src/engines/embeddings';
import { LlamaScorer } from '../src/engines/llama/llamaScorer';
import { IndexingQueue } from '../src/services/indexingQueue';
import { Personalizer } from '../src/services/personalizer';
import { PreferenceMemory } from '../src/storage';
import { samplePrompts, type Topic } from '../tools/attribute-world/corpus';
import { bar, option, flag } from './lib/report';
import { FIXTURE_MODEL, WORKER } from './lib/scoring';
import { PLANTED_USERS, plantedSet, userPairs, userTopics } from './lib/world';

const t0 = performance.now();
const MODEL = option('model', FIXTURE_MODEL);
const USER_ID = option('user', 'u03-length-flip');
const N_PAIRS = Number(option('pairs', '8'));
const EMBEDDER = option('embedder', 'model');
const out = process.stdout;
const tty = out.isTTY === true;
const bold = (s: string): string => (tty ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s: string): string => (tty ? `\x1b[2m${s}\x1b[0m` : s);
const say = (s = ''): void => {
  out.write(`${s}\n`);
};
const wrap = (text: string, indent: string, width = 96, rest = `${indent}  `): string => {
  const words = text.split(/\s+/);
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    if (line.length > 0 && line.length + 1 + w.length > width - indent.length) {
      lines.push(line);
      line = w;
    } else line = line.length === 0 ? w : `${line} ${w}`;
  }
  if (line.length > 0) lines.push(line);
  return lines.map((l, i) => (i === 0 ? indent : rest) + l).join('\n');
};

if (!existsSync(MODEL)) {
  say(`No model at ${MODEL}. The fixture model is committed at ${FIXTURE_MODEL}; rebuild it with tools/train-fixture/build.sh or pass --model.`);
  process.exit(1);
}
const user = PLANTED_USERS.find((u) => u.id === USER_ID);
if (user === undefined) {
  say(`Unknown user ${USER_ID}; one of: ${PLANTED_USERS.map((u) => u.id).join(', ')}`);
  process.exit(1);
}

const folder = await mkdtemp(join(tmpdir(), 'exact-demo-'));
const llama = new LlamaScorer({ modelPath: MODEL, workerPath: WORKER, engine: { threads: 1 } });
const embedder: Embedder = EMBEDDER === 'model' ? llama : new LocalHashEmbedder();
const library = [...ATTRIBUTE_NAMES];
const decoding: GenerationOptions = { temperature: 0.7, topK: 50, topP: 0.95, maxTokens: 160, seed: 11 };
const modelName = basename(MODEL);

try {
  say(bold('EXACT demo: learning a writing style from A/B choices, on a local llama.cpp model'));
  const info = (await llama.info()).info;
  say(dim(`model ${MODEL} (${info.architecture}, ${(info.sizeBytes / 1e6).toFixed(1)} MB, vocabulary ${info.vocabSize}); embeddings: ${embedder.id}; memory in ${folder}`));
  say();

  // 1. Record the planted user's choices.
  const memory = await PreferenceMemory.open(folder, { models: { model: modelName, embeddingModel: embedder.id } });
  const personalizer = new Personalizer(memory, embedder, llama, { k: 3, retrievalMode: 'top1', neighbors: 5, decoding, maxInputChars: 20_000 }, () => library);
  say(bold(`1. A user who prefers different styles on different topics (${user.description})`));
  for (const t of userTopics(user)) say(`   on ${t.padEnd(13)} they pick answers that are ${plantedSet(user, t).join(' + ')}`);
  const pairs = userPairs(user, N_PAIRS, 1);
  for (const p of pairs) await personalizer.recordChoice(p.prompt, p.chosen, p.rejected, 'demo');
  say(`   recorded ${pairs.length} choices into the preference memory. One of them:`);
  const ex = pairs[0]!;
  say(wrap(`prompt:   ${ex.prompt}`, '     '));
  say(wrap(`chosen:   ${ex.chosen}`, '     '));
  say(wrap(`rejected: ${ex.rejected}`, '     '));
  say();

  // 2. Background indexing with a progress bar.
  say(bold(`2. Indexing: greedy attribute selection (Algorithm 1, k = 3 of ${library.length} attributes) for each choice`));
  const queue = new IndexingQueue({ memory, scorer: llama, embedder, model: modelName, scorerKind: 'llama.cpp', library, k: 3, algorithm: 'greedy' });
  let total = pairs.length;
  let done = 0;
  const tIndex = performance.now();
  let note = '';
  let spin = 0;
  const draw = (text = note): void => {
    note = text;
    const secs = ((performance.now() - tIndex) / 1000).toFixed(0);
    const spinner = note === '' ? ' ' : '|/-\\'[spin++ % 4];
    const line = `   ${bar(done / Math.max(1, total), 30)} ${done}/${total}  ${secs}s ${spinner} ${note}`;
    if (tty) out.write(`\r\x1b[K${line.slice(0, (out.columns ?? 120) - 1)}`);
  };
  // Keep the bar alive while a pair is scored (a pair is a few seconds of llama.cpp work).
  const ticker = tty ? setInterval(() => draw(), 250) : undefined;
  queue.onEvent((e) => {
    if (e.type === 'queued') total = e.total;
    else if (e.type === 'started') draw(`scoring choice ${e.position}: 3 greedy rounds over ${library.length} attributes`);
    else if (e.type === 'done') {
      done = e.position;
      draw('');
      const line = `   choice ${e.position}/${e.total}: ${e.attributes.join(', ')}  (gain ${e.gain.toFixed(1)} nats, ${e.scorerCalls} scorer calls, ${(e.durationMs / 1000).toFixed(1)} s)`;
      out.write(tty ? `\r\x1b[K${line}\n` : `${line}\n`);
      draw('');
    } else if (e.type === 'failed') out.write(`${tty ? '\r\x1b[K' : ''}   choice ${e.position} failed: ${e.error}\n`);
  });
  const summary = await queue.run().finally(() => clearInterval(ticker));
  if (tty) out.write('\r\x1b[K');
  say(`   ${bar(1, 30)} ${summary.done}/${summary.total} indexed in ${(summary.durationMs / 1000).toFixed(1)} s (${summary.reason})`);
  if (summary.reason !== 'complete') throw new Error(`Indexing ended: ${summary.reason} ${summary.error ?? ''}`);
  say();

  // 3. The learned profile.
  say(bold('3. The learned profile'));
  const profile = await personalizer.profileSummary();
  say(`   ${profile.items.length} indexed prompts (choices whose attributes widen the preferred-vs-rejected gap)`);
  say('   attribute frequencies:');
  for (const f of profile.frequencies.slice(0, 6)) say(`     ${f.attribute.padEnd(16)} ${bar(f.share, 20)} ${f.count}/${profile.items.length}`);
  say('   topic modes (prompts grouped by similarity):');
  for (const m of profile.modes.slice(0, 4)) {
    const attrs = m.attributes.slice(0, 3).map((a) => `${a.attribute} ${a.count}/${m.memberIds.length}`).join(', ');
    say(wrap(`- ${m.memberIds.length} prompt(s) like “${m.label}”: ${attrs}`, '     '));
  }
  say();

  // 4. New prompts on two topics: retrieval, then generation with and without EXACT.
  say(bold('4. New prompts: retrieved attributes, and the model with and without them'));
  const recorded = new Set(pairs.map((p) => p.prompt));
  const topics = userTopics(user).slice(0, 2) as Topic[];
  for (const topic of topics) {
    const prompt = samplePrompts(99, topic, 20, 'heldout').find((p) => !recorded.has(p.text))!.text;
    say(`   ${bold('prompt')} (${topic}): ${prompt}`);
    const retrieval = await personalizer.retrieve(prompt);
    say(`   retrieved: ${retrieval.attributes.join(', ') || '(none)'}   ${dim(`planted for ${topic}: ${plantedSet(user, topic).join(', ')}`)}`);
    say(wrap(`why: ${retrieval.why}`, '   '));
    const { text: plain } = await llama.generate(prompt, [], decoding);
    const personalized = await personalizer.generate(prompt);
    say(wrap(`without EXACT: ${plain}`, '     '));
    say(wrap(`with EXACT <${personalized.retrieval.attributes.join(', ')}>: ${personalized.text}`, '     '));
    say();
  }
  await memory.close();
  say(dim(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s${flag('keep') ? `; memory kept in ${folder}` : ''}`));
} finally {
  await llama.dispose();
  if (!flag('keep')) await rm(folder, { recursive: true, force: true });
}
