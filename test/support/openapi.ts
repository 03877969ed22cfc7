/**
 * Validates Ollama requests and responses against Ollama's own OpenAPI 3.1 specification
 * (../shared/ollama/openapi.yaml beside the repository, as laid out for developers and CI;
 * EXACT_OLLAMA_OPENAPI overrides the path). The spec is read, not vendored into the project.
 *
 * The YAML is loaded with `yaml`; `$ref`s ("#/components/schemas/X", or any local JSON pointer)
 * are resolved here by inlining the target (a small resolver: the spec's schemas are acyclic, and
 * a cycle is reported rather than looped on); the resulting JSON Schemas (2020-12, the dialect of
 * OpenAPI 3.1) are compiled with Ajv. OpenAPI-only annotations (`example`, `x-*`) are dropped
 * and the spec's formats (`float`, `date-time`, `uri`) are registered.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020, { type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { parse } from 'yaml';

export const OLLAMA_OPENAPI_PATH =
  process.env.EXACT_OLLAMA_OPENAPI ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'ollama', 'openapi.yaml');

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Resolves a local JSON pointer ("#/a/b~1c") inside `root`. */
export function resolvePointer(root: Json, ref: string): Json {
  if (!ref.startsWith('#')) throw new Error(`Only local $refs are supported, got ${ref}`);
  const parts = ref
    .slice(1)
    .split('/')
    .filter((p) => p !== '')
    .map((p) => decodeURIComponent(p).replace(/~1/g, '/').replace(/~0/g, '~'));
  let node: Json = root;
  for (const p of parts) {
    if (node === null || typeof node !== 'object' || !(p in node)) throw new Error(`Unresolvable $ref ${ref} (at "${p}")`);
    node = (node as Record<string, Json>)[p]!;
  }
  return node;
}

/** A copy of `node` with every $ref inlined (siblings of a $ref are merged over the target). */
export function inlineRefs(node: Json, root: Json, seen: ReadonlyArray<string> = []): Json {
  if (Array.isArray(node)) return node.map((n) => inlineRefs(n, root, seen));
  if (node === null || typeof node !== 'object') return node;
  const ref = node.$ref;
  if (typeof ref === 'string') {
    if (seen.includes(ref)) throw new Error(`Cyclic $ref: ${[...seen, ref].join(' -> ')}`);
    const target = inlineRefs(resolvePointer(root, ref), root, [...seen, ref]);
    const { $ref: _ignored, ...siblings } = node;
    const rest = inlineRefs(siblings, root, seen);
    return target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...target, ...(rest as object) } : target;
  }
  const out: Record<string, Json> = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'example' || k.startsWith('x-')) continue;
    out[k] = inlineRefs(v, root, seen);
  }
  return out;
}

export interface Violation {
  readonly where: string;
  readonly errors: string[];
}

function describe(errors: ReadonlyArray<ErrorObject> | null | undefined): string[] {
  return (errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message ?? e.keyword}${e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : ''}`);
}

export class OllamaOpenApi {
  readonly spec: Record<string, Json>;
  private readonly ajv: Ajv2020;
  private readonly cache = new Map<string, ValidateFunction>();

  constructor(specText: string) {
    this.spec = parse(specText) as Record<string, Json>;
    this.ajv = new Ajv2020({ allErrors: true, strict: false, validateFormats: true });
    this.ajv.addFormat('float', { type: 'number', validate: (x: number) => Number.isFinite(x) });
    this.ajv.addFormat('date-time', (s: string) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(s));
    this.ajv.addFormat('uri', (s: string) => {
      try {
        new URL(s);
        return true;
      } catch {
        return false;
      }
    });
  }

  static load(path = OLLAMA_OPENAPI_PATH): OllamaOpenApi {
    return new OllamaOpenApi(readFileSync(path, 'utf8'));
  }

  /** The resolved JSON Schema of components.schemas[name]. */
  schema(name: string): Json {
    return inlineRefs({ $ref: `#/components/schemas/${name}` }, this.spec);
  }

  private operation(method: string, path: string): Record<string, Json> {
    const item = (this.spec.paths as Record<string, Record<string, Json>> | undefined)?.[path];
    const op = item?.[method.toLowerCase()];
    if (op === undefined || op === null || typeof op !== 'object' || Array.isArray(op)) throw new Error(`The spec has no ${method.toUpperCase()} ${path}`);
    return op as Record<string, Json>;
  }

  private compile(key: string, schema: () => Json): ValidateFunction {
    let v = this.cache.get(key);
    if (v === undefined) {
      v = this.ajv.compile(schema() as object);
      this.cache.set(key, v);
    }
    return v;
  }

  /** Errors of `value` against components.schemas[name] ([] when valid). */
  validateSchema(name: string, value: unknown): string[] {
    const v = this.compile(`schema:${name}`, () => this.schema(name));
    return v(value) ? [] : describe(v.errors);
  }

  /** Errors of a JSON request body against the operation's requestBody schema. */
  validateRequest(method: string, path: string, body: unknown): string[] {
    const op = this.operation(method, path);
    const content = (op.requestBody as { content?: Record<string, { schema?: Json }> } | undefined)?.content;
    const schema = content?.['application/json']?.schema;
    if (schema === undefined) return body === undefined ? [] : [`${method.toUpperCase()} ${path} takes no request body`];
    const v = this.compile(`req:${method}:${path}`, () => inlineRefs(schema, this.spec));
    return v(body) ? [] : describe(v.errors);
  }

  /**
   * Errors of a response body. `contentType` 'application/x-ndjson' validates one stream line.
   * Statuses the spec does not list (errors such as 404) are checked against ErrorResponse.
   */
  validateResponse(method: string, path: string, status: number, contentType: string, body: unknown): string[] {
    const op = this.operation(method, path);
    const responses = op.responses as Record<string, { content?: Record<string, { schema?: Json }> }> | undefined;
    const entry = responses?.[String(status)];
    if (entry === undefined) {
      if (status >= 400) return this.validateSchema('ErrorResponse', body).concat(typeof (body as { error?: unknown })?.error === 'string' ? [] : ['error responses carry {"error": string}']);
      return [`${method.toUpperCase()} ${path} does not list status ${status}`];
    }
    const media = contentType.split(';')[0]!.trim();
    const schema = entry.content?.[media]?.schema;
    if (schema === undefined) {
      if (entry.content === undefined) return [];
      return [`${method.toUpperCase()} ${path} ${status} has no ${media} content in the spec (it lists ${Object.keys(entry.content).join(', ')})`];
    }
    const v = this.compile(`res:${method}:${path}:${status}:${media}`, () => inlineRefs(schema, this.spec));
    return v(body) ? [] : describe(v.errors);
  }
}
