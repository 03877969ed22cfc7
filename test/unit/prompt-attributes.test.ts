import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ATTRIBUTE_LIBRARY,
  ATTRIBUTE_NAMES,
  AttributeValidationError,
  buildAttributeLibrary,
  buildAttributedPrompt,
  parseAttributedPrompt,
  validateCustomAttribute,
} from '../../src/core';

test('the library has the 42 attributes of Table 4 in a stable order', () => {
  assert.equal(ATTRIBUTE_NAMES.length, 42);
  assert.equal(new Set(ATTRIBUTE_NAMES.map((n) => n.toLowerCase())).size, 42);
  assert.deepEqual(ATTRIBUTE_NAMES.slice(0, 4), ['Base', 'Formal', 'Concise', 'Vivid']);
  assert.deepEqual(ATTRIBUTE_NAMES.slice(-3), ['Conspiracy', 'Tech Industry Priority', 'Eco-friendly']);
  for (const a of ATTRIBUTE_LIBRARY) {
    assert.ok(a.description.length > 5, `${a.name} needs a description`);
    assert.doesNotThrow(() => validateCustomAttribute(a.name, []), `${a.name} must itself be a valid attribute name`);
  }
});

test('prompt construction matches the paper: prompt, newline, Attributes: <a, b, c>', () => {
  assert.equal(
    buildAttributedPrompt('do you think there are ufo sightings hidden from us?', ['Direct', 'Concise', 'Analytic']),
    'do you think there are ufo sightings hidden from us?\nAttributes: <Direct, Concise, Analytic>',
  );
  assert.equal(buildAttributedPrompt('Hello', []), 'Hello', 'no attribute block for the empty set');
  assert.equal(buildAttributedPrompt('Hello', ['Internet Slang']), 'Hello\nAttributes: <Internet Slang>');
});

test('multi-line and unicode prompts keep every character; the block is the last line', () => {
  const prompt = 'Summarize this post.\nPost: “Café déjà vu — 30% fewer tickets” 🚀\n\n  indented line';
  const built = buildAttributedPrompt(prompt, ['Concise', 'Eco-friendly']);
  assert.equal(built, `${prompt}\nAttributes: <Concise, Eco-friendly>`);
  assert.deepEqual(parseAttributedPrompt(built), { prompt, attributes: ['Concise', 'Eco-friendly'] });
  assert.deepEqual(parseAttributedPrompt(prompt), { prompt, attributes: [] });
});

test('custom attributes are validated with actionable messages', () => {
  assert.equal(validateCustomAttribute('  Playful  '), 'Playful');
  const bad: [string, RegExp][] = [
    ['', /empty/],
    ['   ', /empty/],
    ['x'.repeat(41), /at most 40/],
    ['a, b', /< > ,/],
    ['<tag>', /< > ,/],
    ['two\nlines', /line break/],
    ['concise', /already exists as "Concise"/],
    ['INTERNET SLANG', /already exists/],
  ];
  for (const [name, message] of bad) {
    assert.throws(() => validateCustomAttribute(name), (e: unknown) => e instanceof AttributeValidationError && message.test(e.message), name);
  }
  assert.equal(validateCustomAttribute('x'.repeat(40)).length, 40);
  const lib = buildAttributeLibrary(['Playful', 'Nerdy']);
  assert.equal(lib.length, 44);
  assert.deepEqual(lib.slice(42).map((a) => [a.name, a.custom]), [['Playful', true], ['Nerdy', true]]);
  assert.throws(() => buildAttributeLibrary(['Playful', 'playful']), /already exists/);
});
