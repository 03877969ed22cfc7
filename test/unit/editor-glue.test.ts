/**
 * The VS Code glue without VS Code: settings, errors-to-actions, the status bar, the runtime and
 * the profile commands run against FakeHost (test/support/fakeHost.ts) with a real preference
 * memory on disk. Nothing here imports the vscode module (importing it would fail under node).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { greedySelect } from '../../src/core';
import { OLLAMA_DEFAULTS, PAPER_DECODING, resolveOllamaConfig } from '../../src/engines/ollama/config';
import { OllamaModelNotFoundError, OllamaNotRunningError, OllamaTimeoutError } from '../../src/engines/ollama/errors';
import { ScorerUnavailableError } from '../../src/engines/scorerSelection';
import { resolveVllmConfig, VllmError } from '../../src/engines/vllm/client';
import { checkSetup, exportData, importData, reindex, resetData } from '../../src/extension/dataCommands';
import { errorActions, showError } from '../../src/extension/errors';
import { ExactRuntime, nextSnapshot, VLLM_API_KEY_SECRET, type QueueSnapshot } from '../../src/extension/runtime';
import { readSettings, SETTING_KINDS, settingValue, type ConfigurationSource } from '../../src/extension/settings';
import { IndexingStatus, statusView } from '../../src/extension/statusBar';
import { clearVllmApiKey, setVllmApiKey } from '../../src/extension/vllmCommands';
import type { IndexingEvent } from '../../src/services/indexingQueue';
import { EmptyInputError, InputTooLargeError } from '../../src/services/personalizer';
import { declaredSettingKeys, settingSchema, type SettingKey } from '../../src/shared/settingsManifest';
import { FakeHost } from '../support/fakeHost';
import { LocalHttpServer } from '../support/localHttpServer';
import { HashScorer, TEST_LIBRARY, tempFolder, testPair } from '../support/storageFakes';

const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as { contributes: { configuration: { properties: Record<string, { default: unknown; minimum?: number; maximum?: number; type: string; enum?: string[] }> } } };
const declared = manifest.contributes.configuration.properties;
const empty: ConfigurationSource = { get: () => undefined };
const keys = Object.keys(SETTING_KINDS) as SettingKey[];

describe('settings: package.json is the one source of defaults and bounds', () => {
  test('every setting the code reads is declared in package.json, and every declared one is read', () => {
    assert.deepEqual([...keys].sort(), declaredSettingKeys().sort());
    for (const key of keys) assert.ok(declared[`exact.${key}`], `exact.${key} is declared`);
  });

  test('an unset setting reads as its declared default', () => {
    for (const key of keys) assert.deepEqual(settingValue(empty, key), declared[`exact.${key}`]!.default, key);
    const s = readSettings(empty);
    assert.equal(s.k, declared['exact.attributesPerPrompt']!.default);
    assert.equal(s.similarityFloor, undefined, 'the default floor (-1) is off');
    assert.equal(s.ollama.requestTimeoutMs, 1000 * (declared['exact.ollama.requestTimeoutSeconds']!.default as number));
  });

  test('the engines\' stand-alone defaults are the declared ones', () => {
    const d = (key: string): unknown => declared[`exact.${key}`]!.default;
    const config = resolveOllamaConfig({}, {});
    assert.equal(config.model, d('ollama.model'));
    assert.equal(config.embeddingModel, d('ollama.embeddingModel'));
    assert.equal(config.numCtx, d('ollama.contextLength'));
    assert.equal(config.maxTokens, d('generation.maxTokens'));
    assert.equal(config.requestTimeoutMs, 1000 * (d('ollama.requestTimeoutSeconds') as number));
    assert.equal(config.firstTokenTimeoutMs, 1000 * (d('ollama.loadTimeoutSeconds') as number));
    assert.deepEqual(PAPER_DECODING, { temperature: d('generation.temperature'), topK: d('generation.topK'), topP: d('generation.topP') });
    assert.equal(OLLAMA_DEFAULTS.model, d('ollama.model'));
    const vllm = resolveVllmConfig({});
    assert.equal(vllm.baseUrl, d('vllm.url'));
    assert.equal(vllm.model, d('vllm.model'));
    assert.equal(vllm.scoreTimeoutMs, 1000 * (d('vllm.timeoutSeconds') as number));
    assert.equal(vllm.firstTokenTimeoutMs, 1000 * (d('vllm.timeoutSeconds') as number));
  });

  test('values outside the declared bounds are clamped to them; wrong types and unknown enum values take the default', () => {
    let bounded = 0;
    for (const key of keys) {
      const schema = settingSchema(key);
      const source = (value: unknown): ConfigurationSource => ({ get: (k) => (k === key ? value : undefined) });
      if (schema.minimum !== undefined) {
        assert.equal(settingValue(source(schema.minimum - 1000), key), schema.minimum, `${key} below its minimum`);
        assert.equal(settingValue(source(schema.minimum), key), schema.minimum, `${key} at its minimum is kept`);
        bounded++;
      }
      if (schema.maximum !== undefined) {
        assert.equal(settingValue(source(schema.maximum + 1000), key), schema.maximum, `${key} above its maximum`);
        bounded++;
      }
      assert.deepEqual(settingValue(source({ not: 'a setting value' }), key), schema.default, `${key} with a wrong type`);
      if (schema.enum !== undefined) assert.equal(settingValue(source('no-such-choice'), key), schema.default, `${key} outside its enum`);
    }
    assert.ok(bounded >= 10, `bounds were checked (${bounded})`);
    assert.equal(settingValue({ get: () => 2.6 }, 'attributesPerPrompt'), 3, 'an integer setting is rounded');
    assert.equal(settingValue({ get: () => 'lazy' }, 'indexing.algorithm'), 'lazy');
  });

  test('each setting is read once (generation.maxTokens used to be read twice) and feeds both Ollama and decoding', () => {
    const reads = new Map<string, number>();
    const s = readSettings({ get: (k) => (reads.set(k, (reads.get(k) ?? 0) + 1), k === 'generation.maxTokens' ? 77 : undefined) });
    assert.deepEqual([...reads.values()].filter((n) => n !== 1), [], JSON.stringify([...reads]));
    assert.equal(reads.size, keys.length);
    assert.equal(s.ollama.maxTokens, 77);
    assert.equal(s.decoding.maxTokens, 77);
  });
});

describe('errors to actions', () => {
  const labels = (e: unknown): string[] => errorActions(e).actions.map((a) => a.label);

  test('each kind of error offers the buttons that fix it', () => {
    assert.deepEqual(labels(new OllamaNotRunningError('http://127.0.0.1:1', 'ECONNREFUSED')), ['Retry Check', 'Open Settings', 'Setup Guide']);
    assert.deepEqual(labels(new OllamaModelNotFoundError('h', 'llama3.2:3b')), ['Copy "ollama pull llama3.2:3b"', 'Choose Model']);
    assert.deepEqual(labels(new OllamaModelNotFoundError('h', 'nomic-embed-text', 'embedding')), ['Copy "ollama pull nomic-embed-text"', 'Embedding Model Setting']);
    assert.deepEqual(labels(new OllamaTimeoutError('h', 'request', 15_000)), ['Open Settings', 'Setup Guide']);
    assert.deepEqual(labels(new ScorerUnavailableError('No scorer.', 'Set exact.modelPath.')), ['Open Settings', 'Setup Guide']);
    assert.deepEqual(labels(new VllmError('unauthorized', 'h', 'The server refused the API key.', 'Set the key.', 401)), ['Set vLLM API Key', 'Retry Check', 'Open Settings']);
    assert.deepEqual(labels(new VllmError('unreachable', 'h', 'Nothing answers.', 'Start the server.')), ['Retry Check', 'Open Settings']);
    assert.deepEqual(labels(new Error('something else')), ['Show Log']);
    assert.deepEqual(errorActions(new EmptyInputError('prompt')), { level: 'warning', actions: [] });
    assert.equal(errorActions(new InputTooLargeError(10, 5)).level, 'warning');
  });

  test('the button chosen runs its fix; a cancellation shows nothing', async () => {
    const host = new FakeHost('/nonexistent');
    host.answer = (m) => m.actions[0];
    await showError(host, new OllamaNotRunningError('http://127.0.0.1:1', 'ECONNREFUSED'), 'Setup check: ');
    assert.match(host.messages[0]!.text, /^EXACT: Setup check: /);
    assert.equal(host.messages[0]!.level, 'error');
    assert.deepEqual(host.commands, [{ command: 'exact.checkSetup', args: [] }]);
    await showError(host, new OllamaModelNotFoundError('h', 'qwen3:8b'));
    assert.deepEqual(host.clipboard, ['ollama pull qwen3:8b']);
    host.answer = (m) => m.actions[1];
    await showError(host, new OllamaModelNotFoundError('h', 'nomic-embed-text', 'embedding'));
    assert.deepEqual(host.commands.at(-1), { command: 'workbench.action.openSettings', args: ['exact.ollama.embeddingModel'] });
    host.answer = (m) => m.actions[0];
    await showError(host, new VllmError('unauthorized', 'h', 'The server refused the API key.', 'Set the key.', 401));
    assert.deepEqual(host.commands.at(-1), { command: 'exact.setVllmApiKey', args: [] });
    await showError(host, new Error('disk full'));
    assert.equal(host.logShown, 1);
    const shown = host.messages.length;
    await showError(host, Object.assign(new Error('stopped'), { name: 'AbortError' }));
    assert.equal(host.messages.length, shown);
    assert.ok(host.logs.some((l) => l.level === 'error' && /disk full/.test(l.message)), 'errors are logged');
  });
});

describe('status bar and queue snapshot', () => {
  const start: QueueSnapshot = { running: false, position: 0, total: 0, pending: 0, learned: 4 };
  const events: IndexingEvent[] = [
    { type: 'queued', pairIds: ['a', 'b', 'c'], total: 3 },
    { type: 'started', pairId: 'a', position: 1, total: 3, attempt: 1 },
    { type: 'done', pairId: 'a', position: 1, total: 3, attributes: ['Concise'], gain: 1, durationMs: 1, scorerCalls: 1, stored: true },
    { type: 'started', pairId: 'b', position: 2, total: 3, attempt: 1 },
    { type: 'done', pairId: 'b', position: 2, total: 3, attributes: [], gain: 0, durationMs: 1, scorerCalls: 1, stored: false },
    { type: 'failed', pairId: 'c', position: 3, total: 3, error: 'too long', errorClass: 'pair', attempts: 1 },
    { type: 'idle', reason: 'complete', done: 2, failed: 1, total: 3, remaining: 1, durationMs: 5 },
  ];

  test('the snapshot counts positions, what is pending and what was learned', () => {
    const seen: QueueSnapshot[] = [];
    let s = start;
    for (const e of events) {
      s = nextSnapshot(s, e) ?? s;
      seen.push(s);
    }
    assert.deepEqual(seen.map((x) => [x.running, x.position, x.total, x.pending, x.learned]), [
      [true, 0, 3, 3, 4],
      [true, 1, 3, 3, 4],
      [true, 1, 3, 2, 5],
      [true, 2, 3, 2, 5],
      [true, 2, 3, 1, 5], // a pair deleted while analysed is not counted as learned
      [true, 2, 3, 1, 5],
      [false, 2, 3, 1, 5],
    ]);
    assert.equal(seen.at(-1)!.lastError, 'too long');
    assert.equal(nextSnapshot(start, { type: 'retrying', pairId: 'a', attempt: 2, delayMs: 5, error: 'busy' }), undefined);
  });

  test('the item reads "indexing n/total" while running and the learned count otherwise, with a warning after a problem', () => {
    assert.equal(statusView({ ...start, running: true, position: 2, total: 5 }).text, '$(sync~spin) EXACT: indexing 2/5');
    assert.equal(statusView({ ...start, running: true }).text, '$(sync~spin) EXACT: indexing 1/1');
    assert.deepEqual(statusView({ ...start, learned: 1 }), { text: '$(person) EXACT: 1 prompt learned', tooltip: 'Click to see your attribute profile.', warning: false });
    assert.equal(statusView({ ...start, pending: 2 }).tooltip, '2 choices waiting to be learned.');
    assert.deepEqual(statusView({ ...start, lastError: 'Ollama is not running' }), { text: '$(person) EXACT: 4 prompts learned', tooltip: 'Last problem: Ollama is not running', warning: true });
  });
});

describe('runtime and commands on a real memory', () => {
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of cleanups) await c();
  });
  const runtimeIn = async (): Promise<{ host: FakeHost; runtime: ExactRuntime }> => {
    const { dir, cleanup } = await tempFolder('exact-glue-');
    const host = new FakeHost(dir);
    const runtime = new ExactRuntime(host);
    cleanups.unshift(async () => {
      runtime.dispose();
      await cleanup();
    });
    return { host, runtime };
  };

  test('the memory is built once, keyed to the model; changing the model rebuilds it and offers to re-index', async () => {
    const { host, runtime } = await runtimeIn();
    const memory = await runtime.memory();
    assert.equal(await runtime.memory(), memory, 'cached');
    assert.equal(memory.currentModels.model, declared['exact.ollama.model']!.default);
    const pair = await memory.recordPair(testPair(1));
    const [vector] = await (await runtime.embedder()).embed([pair.prompt]);
    const result = await greedySelect(new HashScorer(), pair, TEST_LIBRARY, { k: 2 });
    await memory.storeSelection({ pairId: pair.id, result, embedding: vector!, scorerKind: 'fake', algorithm: 'greedy', k: 2, durationMs: 0 });
    assert.equal((await runtime.refreshSnapshot()).learned, 1);

    host.answer = (m) => (m.actions.includes('Re-index') ? 'Re-index' : undefined);
    await host.updateSetting('ollama.model', 'qwen3:8b');
    await runtime.reloaded;
    assert.equal(runtime.modelName(), 'qwen3:8b');
    const rebuilt = await runtime.memory();
    assert.notEqual(rebuilt, memory);
    assert.equal(rebuilt.currentModels.model, 'qwen3:8b');
    assert.match(host.messages.at(-1)!.text, /1 learned prompts were analysed with another model.*Re-index them with qwen3:8b\?/);
    assert.deepEqual(host.commands.at(-1), { command: 'exact.reindex', args: [] });
    await memory.close();

    // A decoding change keeps the memory.
    await host.updateSetting('generation.temperature', 0.2);
    await runtime.reloaded;
    assert.equal(await runtime.memory(), rebuilt);
    assert.equal(runtime.personalizerSettings().decoding.temperature, 0.2);
  });

  test('a bad custom attribute falls back to the built-in library and is reported once', async () => {
    const { host, runtime } = await runtimeIn();
    const builtIn = runtime.library();
    await host.updateSetting('customAttributes', ['Good', 'bad, with a comma']);
    await runtime.reloaded;
    assert.deepEqual(runtime.library(), builtIn);
    assert.deepEqual(runtime.library(), builtIn);
    const warnings = host.messages.filter((m) => m.level === 'warning');
    assert.equal(warnings.length, 1, 'once per distinct problem');
    assert.match(warnings[0]!.text, /custom attributes are not used until this is fixed/);
    await host.updateSetting('customAttributes', ['Good']);
    await runtime.reloaded;
    assert.deepEqual(runtime.library(), [...builtIn, 'Good']);
  });

  test('reset deletes only after confirmation and updates the status; untrusted workspaces do not index', async () => {
    const { host, runtime } = await runtimeIn();
    const status = new IndexingStatus(runtime);
    const memory = await runtime.memory();
    await memory.recordPair(testPair(1));
    await memory.recordPair(testPair(2));
    host.answer = () => undefined;
    await resetData(runtime);
    assert.match(host.messages.at(-1)!.text, /Delete all 2 recorded choices/);
    assert.equal((await memory.listPairs()).length, 2, 'declined: nothing deleted');
    host.answer = (m) => (m.level === 'confirm' ? 'Delete Everything' : undefined);
    await resetData(runtime);
    assert.equal((await memory.listPairs()).length, 0);
    assert.equal(host.messages.at(-1)!.text, 'EXACT: All preferences were deleted.');
    assert.equal(host.statusViews.at(-1)!.text, '$(person) EXACT: 0 prompts learned');

    host.trusted = false;
    await reindex(runtime);
    assert.equal(host.messages.at(-1)!.text, 'EXACT: Indexing is disabled in untrusted workspaces.');
    await runtime.kickIndexing();
    assert.equal(host.contexts.get('exact.indexing'), undefined, 'no indexing started');
    status.dispose();
  });

  test('export then import into another workspace brings every choice over', async () => {
    const a = await runtimeIn();
    const b = await runtimeIn();
    b.host.trusted = false; // keeps the import from starting to index (no scorer here)
    for (const i of [1, 2, 3]) await (await a.runtime.memory()).recordPair(testPair(i));
    a.host.saveFile = `${a.host.storageFolder}/export.json`;
    await exportData(a.runtime);
    assert.equal(a.host.messages.at(-1)!.text, `EXACT: Exported 3 choices to ${a.host.saveFile}.`);
    b.host.openFile = a.host.saveFile;
    await importData(b.runtime);
    assert.equal(b.host.messages.at(-1)!.text, 'EXACT: Imported 3 new choices.');
    assert.deepEqual((await (await b.runtime.memory()).listPairs()).map((p) => p.id).sort(), ['t-1', 't-2', 't-3']);
    // Cancelled dialogs do nothing.
    const shown = b.host.messages.length;
    b.host.openFile = undefined;
    await importData(b.runtime);
    assert.equal(b.host.messages.length, shown);
  });

  test('the setup check reports an unreachable Ollama with its fixes', async () => {
    const { host, runtime } = await runtimeIn();
    await host.updateSetting('ollama.host', 'http://127.0.0.1:9'); // discard port: nothing listens
    await host.updateSetting('ollama.requestTimeoutSeconds', 2);
    await runtime.reloaded;
    assert.equal(await checkSetup(runtime), false);
    const shown = host.messages.at(-1)!;
    assert.equal(shown.level, 'error');
    assert.match(shown.text, /^EXACT: Setup check: /);
    assert.deepEqual(shown.actions, ['Retry Check', 'Open Settings', 'Setup Guide']);
  });

  test('the vLLM API key lives in the secret storage: set, sent as the bearer token, refused when malformed, cleared', async () => {
    const authorizations: Array<string | undefined> = [];
    // A server that refuses every request, recording the Authorization header it was sent.
    const server = new LocalHttpServer((req, res) => {
      authorizations.push(req.headers.authorization);
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'Unauthorized' } }));
    });
    await server.listen();
    cleanups.unshift(() => server.stop());
    const { host, runtime } = await runtimeIn();
    await host.updateSetting('backend', 'vllm');
    await host.updateSetting('vllm.url', server.url);
    await host.updateSetting('vllm.model', 'team-model');
    await runtime.reloaded;
    assert.equal(runtime.modelName(), 'vllm:team-model');

    assert.equal(await checkSetup(runtime), false);
    assert.equal(authorizations.at(-1), undefined, 'no key stored: no Authorization header');
    assert.deepEqual(host.messages.at(-1)!.actions, ['Set vLLM API Key', 'Retry Check', 'Open Settings']);
    assert.match(host.messages.at(-1)!.text, /^EXACT: Setup check: /);

    host.secretAnswer = 'two words';
    await setVllmApiKey(host);
    assert.equal(host.storedSecrets.size, 0, 'a key with a space is refused, nothing stored');
    assert.match(host.secretRefusals[0]!, /no spaces/);

    host.secretAnswer = '  team-secret  ';
    await setVllmApiKey(host);
    assert.equal(host.storedSecrets.get(VLLM_API_KEY_SECRET), 'team-secret');
    await runtime.reloaded;
    assert.equal(await checkSetup(runtime), false);
    assert.equal(authorizations.at(-1), 'Bearer team-secret', 'the stored key travels with the next request');
    assert.ok(!host.logs.some((l) => l.message.includes('team-secret')), 'the key is never logged');

    await clearVllmApiKey(host);
    await runtime.reloaded;
    assert.equal(host.storedSecrets.has(VLLM_API_KEY_SECRET), false);
    assert.equal(await checkSetup(runtime), false);
    assert.equal(authorizations.at(-1), undefined, 'cleared: no Authorization header again');
  });
});
