/**
 * Decoding JSON request bodies against a small schema, the way Go's
 * encoding/json treats Docker's structs: unknown fields are ignored, a field
 * of the wrong type is a 400 that names the field, null means "unset".
 */
import { invalidArgument } from '../core/errdefs/index.js';

export type FieldType =
  | 'string'
  | 'number'
  | 'integer'
  | 'boolean'
  | 'strings'
  /** []string that also accepts a single string (Docker's strslice). */
  | 'strslice'
  | 'stringMap'
  | 'object'
  | 'any'
  | { object: Schema }
  | { array: FieldType }
  | { map: FieldType };

export interface Schema {
  [field: string]: FieldType;
}

function typeName(t: FieldType): string {
  if (typeof t === 'string') {
    return { strings: '[]string', strslice: '[]string', stringMap: 'map[string]string', integer: 'int64' }[t as string] ?? t;
  }
  if ('object' in t) return 'object';
  if ('array' in t) return `[]${typeName(t.array)}`;
  return `map[string]${typeName(t.map)}`;
}

function jsonKind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function fail(path: string, t: FieldType, v: unknown): never {
  throw invalidArgument(`json: cannot unmarshal ${jsonKind(v)} into field ${path} of type ${typeName(t)}`);
}

export function decodeValue(value: unknown, t: FieldType, path: string): unknown {
  if (value === null || value === undefined) return undefined;
  if (typeof t === 'string') {
    switch (t) {
      case 'string':
        if (typeof value !== 'string') fail(path, t, value);
        return value;
      case 'number':
        if (typeof value !== 'number' || !Number.isFinite(value)) fail(path, t, value);
        return value;
      case 'integer':
        if (typeof value !== 'number' || !Number.isInteger(value)) fail(path, t, value);
        return value;
      case 'boolean':
        if (typeof value !== 'boolean') fail(path, t, value);
        return value;
      case 'strings':
        if (!Array.isArray(value) || !value.every((x) => typeof x === 'string')) fail(path, t, value);
        return value;
      case 'strslice':
        if (typeof value === 'string') return [value];
        if (!Array.isArray(value) || !value.every((x) => typeof x === 'string')) fail(path, t, value);
        return value;
      case 'stringMap':
        if (typeof value !== 'object' || Array.isArray(value)) fail(path, t, value);
        for (const [k, v] of Object.entries(value as object)) {
          if (typeof v !== 'string') fail(`${path}.${k}`, 'string', v);
        }
        return value;
      case 'object':
        if (typeof value !== 'object' || Array.isArray(value)) fail(path, t, value);
        return value;
      case 'any':
        return value;
    }
  }
  if ('object' in t) {
    if (typeof value !== 'object' || Array.isArray(value)) fail(path, t, value);
    return decodeObject(value as Record<string, unknown>, t.object, path);
  }
  if ('array' in t) {
    if (!Array.isArray(value)) fail(path, t, value);
    return value.map((v, i) => decodeValue(v, t.array, `${path}[${i}]`));
  }
  if (typeof value !== 'object' || Array.isArray(value)) fail(path, t, value);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as object)) out[k] = decodeValue(v, t.map, `${path}.${k}`);
  return out;
}

export function decodeObject(value: Record<string, unknown>, schema: Schema, path: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [field, t] of Object.entries(schema)) {
    // Go matches JSON keys to struct fields case-insensitively
    let raw = value[field];
    if (raw === undefined) {
      const lower = field.toLowerCase();
      const key = Object.keys(value).find((k) => k.toLowerCase() === lower);
      if (key !== undefined) raw = value[key];
    }
    const v = decodeValue(raw, t, path ? `${path}.${field}` : field);
    if (v !== undefined) out[field] = v;
  }
  return out;
}

/** Parses a JSON body; empty means {}. */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch (err) {
    throw invalidArgument(`invalid JSON: ${(err as Error).message}`);
  }
}

export function decodeBody<T>(text: string, schema: Schema, what: string): T {
  const value = parseJsonBody(text);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidArgument(`json: cannot unmarshal ${jsonKind(value)} into ${what}`);
  }
  return decodeObject(value as Record<string, unknown>, schema, '') as T;
}
