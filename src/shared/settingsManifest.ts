/**
 * The extension's settings as package.json declares them (contributes.configuration): the one
 * place their defaults and bounds live. The engines' stand-alone defaults and the settings reader
 * both take them from here.
 */
import manifest from '../../package.json';

type Declared = typeof manifest.contributes.configuration.properties;
type Unprefixed<K> = K extends `exact.${infer Rest}` ? Rest : never;

/** A setting key without its `exact.` prefix, e.g. `ollama.model`. */
export type SettingKey = Unprefixed<keyof Declared>;

export interface SettingSchema {
  readonly type: 'string' | 'number' | 'integer' | 'boolean' | 'array';
  readonly default: unknown;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly enum?: ReadonlyArray<string>;
}

const declared = manifest.contributes.configuration.properties as Record<string, SettingSchema>;

export function settingSchema(key: SettingKey): SettingSchema {
  const schema = declared[`exact.${key}`];
  if (schema === undefined) throw new Error(`exact.${key} is not declared in package.json`);
  return schema;
}

/** Every declared key (what the settings test compares with what the code reads). */
export function declaredSettingKeys(): string[] {
  return Object.keys(declared).map((k) => k.slice('exact.'.length));
}

function settingDefault(key: SettingKey): unknown {
  return settingSchema(key).default;
}

export function numberDefault(key: SettingKey): number {
  const value = settingDefault(key);
  if (typeof value !== 'number') throw new Error(`exact.${key} has no numeric default in package.json`);
  return value;
}

export function stringDefault(key: SettingKey): string {
  const value = settingDefault(key);
  if (typeof value !== 'string') throw new Error(`exact.${key} has no string default in package.json`);
  return value;
}
