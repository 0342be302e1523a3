/**
 * Loading an inventory: YAML → schema → semantic checks → Cluster. Reports every problem at once,
 * each with file:line:column, the field path and a hint. Touches no host.
 */
import {resolve} from 'node:path'
import {type Document, isScalar, LineCounter, parseDocument, Scalar} from 'yaml'
import {z, type ZodIssue, type ZodTypeAny} from 'zod'

import type {Cluster} from './model.js'

import {InputError, messageOf} from '../errors.js'
import {checkCredentials} from './credentials.js'
import {type Diagnostic, didYouMean, formatDiagnostic, formatPath, locate, type Severity} from './diagnostics.js'
import {readBoundedFile} from './local-files.js'
import {resolveCluster} from './resolve.js'
import {inventorySchema} from './schema.js'
import {checkInventory, checkLocalFiles} from './validate.js'

export interface LoadResult {
  cluster?: Cluster
  diagnostics: Diagnostic[]
}

export class InventoryError extends InputError {
  readonly diagnostics: Diagnostic[]
  readonly file: string

  constructor(file: string, diagnostics: Diagnostic[]) {
    const errors = diagnostics.filter((d) => d.severity === 'error')
    super(
      `${file}: ${errors.length} problem${errors.length === 1 ? '' : 's'} in the inventory:\n` +
        diagnostics.map((d) => '  ' + formatDiagnostic(file, d)).join('\n'),
      {
        hint:
          'fix the fields above and run `kflan validate -i ' + file + '` again (docs/inventory.md lists every field)',
      },
    )
    this.name = 'InventoryError'
    this.diagnostics = diagnostics
    this.file = file
  }
}

export interface LoadOptions {
  /**
   * Check that local files the inventory names (tarballs, identity files) exist, reporting a
   * missing one with this severity: 'warning' for `validate` (an inventory is valid before its
   * files are in place), 'error' for the commands that need them (init, join). Default: no check.
   */
  checkFiles?: Severity
  /**
   * Check the credentials (identity files, password variables) of the hosts kflan would connect
   * to; the severity of an unset variable (`kflan validate` warns, commands that connect refuse).
   */
  credentials?: Severity
  env?: NodeJS.ProcessEnv
}

/** Parses inventory text. `file` is used for messages and to resolve relative tarball paths. */
export function parseInventory(text: string, file: string, opts: LoadOptions = {}): LoadResult {
  const lc = new LineCounter()
  const doc = parseDocument(text, {lineCounter: lc, prettyErrors: false, uniqueKeys: true})
  const diagnostics: Diagnostic[] = []
  for (const e of doc.errors) {
    const p = lc.linePos(e.pos[0])
    diagnostics.push({
      severity: 'error',
      path: [],
      message: `YAML syntax: ${e.message.split('\n')[0]}`,
      hint: 'check indentation and quoting around this position',
      line: p.line,
      column: p.col,
    })
  }

  if (diagnostics.length > 0) return {diagnostics}

  keepDigestText(doc, text)
  let raw: unknown
  try {
    // yaml refuses documents whose aliases expand beyond maxAliasCount (a "billion laughs" bomb).
    raw = doc.toJS({maxAliasCount: MAX_ALIAS_COUNT}) ?? {}
  } catch (error) {
    return {
      diagnostics: [
        {
          severity: 'error',
          path: [],
          message: `YAML: ${messageOf(error).split('\n')[0]}`,
          hint: `an inventory needs few aliases (*name); this one expands them more than ${MAX_ALIAS_COUNT} times`,
          line: 1,
          column: 1,
        },
      ],
    }
  }

  const parsed = inventorySchema.safeParse(raw)
  let cluster: Cluster | undefined
  if (parsed.success) {
    diagnostics.push(...checkInventory(parsed.data))
    if (!diagnostics.some((d) => d.severity === 'error')) {
      cluster = resolveCluster(parsed.data, resolve(file))
      if (opts.checkFiles) diagnostics.push(...checkLocalFiles(parsed.data, cluster, opts.checkFiles))
      if (opts.credentials)
        diagnostics.push(...checkCredentials(parsed.data, cluster, {env: opts.env, envSeverity: opts.credentials}))
    }
  } else {
    for (const issue of parsed.error.issues) diagnostics.push(...fromZodIssue(issue, raw))
    // Report the cross-field problems too, where dropping the offending fields leaves a valid shape.
    const repaired = inventorySchema.safeParse(dropIssues(raw, parsed.error.issues))
    if (repaired.success) {
      const reported = new Set(diagnostics.map((d) => formatPath(d.path)))
      diagnostics.push(...checkInventory(repaired.data).filter((d) => !reported.has(formatPath(d.path))))
    }
  }

  for (const d of diagnostics) {
    if (d.line !== undefined) continue
    const pos = locate(doc, lc, d.path, (d as {atKey?: boolean}).atKey === true)
    if (pos) Object.assign(d, pos)
  }

  for (const d of diagnostics) delete (d as {atKey?: boolean}).atKey
  diagnostics.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0))
  if (diagnostics.some((d) => d.severity === 'error')) return {diagnostics}
  return {cluster, diagnostics}
}

const MAX_ALIAS_COUNT = 100
/** An inventory is a few kilobytes; anything past this is not one. */
export const MAX_INVENTORY_BYTES = 1024 * 1024

/** Loads and validates; throws InventoryError (exit 2) listing every problem. Warnings are returned. */
export function loadInventory(file: string, opts: LoadOptions = {}): {cluster: Cluster; warnings: Diagnostic[]} {
  const text = readBoundedFile(
    file,
    'inventory',
    MAX_INVENTORY_BYTES,
    'pass an inventory YAML file with -i FILE (see inventories/example.yaml)',
  ).toString('utf8')
  const result = parseInventory(text, file, opts)
  if (!result.cluster) throw new InventoryError(file, result.diagnostics)
  return {cluster: result.cluster, warnings: result.diagnostics.filter((d) => d.severity === 'warning')}
}

/**
 * A digest written without quotes and made only of digits (or digits and one "e") is a number to
 * YAML, which loses leading zeros and precision: the sha256 fields take the plain scalar's text
 * exactly as written in the file instead, and the schema then checks it like any string.
 */
function keepDigestText(doc: Document, text: string): void {
  for (const section of ['etcd', 'flannel']) {
    const node = doc.getIn([section, 'sha256'], true)
    if (!isScalar(node) || typeof node.value === 'string' || node.type !== Scalar.PLAIN || !node.range) continue
    node.value = text.slice(node.range[0], node.range[1])
  }
}

function fromZodIssue(issue: ZodIssue, raw: unknown): Diagnostic[] {
  const {path} = issue
  switch (issue.code) {
    case 'invalid_enum_value': {
      return [
        {
          severity: 'error',
          path,
          message: `${JSON.stringify(issue.received)} is not allowed`,
          hint: `use one of: ${issue.options.join(', ')}`,
        },
      ]
    }

    case 'invalid_string':
    case 'too_big':
    case 'too_small': {
      // Values quoted as JSON: a newline or a quote in them shows as \n or \", never breaks the report.
      const value = path.reduce<unknown>(
        (node, seg) => (node && typeof node === 'object' ? (node as Record<string | number, unknown>)[seg] : undefined),
        raw,
      )
      const got =
        typeof value === 'string'
          ? ` (got ${JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}...` : value)})`
          : ''
      return [
        {
          severity: 'error',
          path,
          message: `${issue.message}${got}`,
          hint: 'see "Field rules" in docs/inventory.md for what this field may hold and why',
        },
      ]
    }

    case 'invalid_type': {
      if (issue.received === 'undefined') {
        return [{severity: 'error', path, message: 'required field is missing', hint: `expected ${issue.expected}`}]
      }

      return [{severity: 'error', path, message: `expected ${issue.expected}, got ${issue.received}`}]
    }

    case 'invalid_union_discriminator': {
      return [
        {
          severity: 'error',
          path,
          message: `unknown backend type`,
          hint: `use one of: ${issue.options.map(String).join(', ')}`,
        },
      ]
    }

    case 'unrecognized_keys': {
      const known = keysAt(inventorySchema, path)
      return issue.keys.map((k) => {
        const guess = didYouMean(k, known)
        return {
          severity: 'error' as const,
          path: [...path, k],
          message: `unknown field ${JSON.stringify(k)}${guess ? `; did you mean ${JSON.stringify(guess)}?` : ''}`,
          hint: known.length > 0 ? `fields allowed here: ${known.join(', ')}` : undefined,
          atKey: true,
        }
      })
    }

    default: {
      return [{severity: 'error', path, message: issue.message}]
    }
  }
}

/** The object keys the schema allows at a path, for "did you mean". */
function keysAt(schema: ZodTypeAny, path: (string | number)[]): string[] {
  let s: ZodTypeAny | undefined = schema
  const unwrap = (t: ZodTypeAny): ZodTypeAny => {
    let cur = t
    for (;;) {
      if (cur instanceof z.ZodDefault) cur = cur._def.innerType
      else if (cur instanceof z.ZodOptional) cur = cur._def.innerType
      else if (cur instanceof z.ZodEffects) cur = cur._def.schema
      else return cur
    }
  }

  const keysOf = (t: ZodTypeAny): string[] => {
    const u = unwrap(t)
    if (u instanceof z.ZodObject) return Object.keys(u.shape)
    if (u instanceof z.ZodDiscriminatedUnion)
      return [...new Set<string>((u.options as ZodTypeAny[]).flatMap((o) => keysOf(o)))]
    return []
  }

  for (const seg of path) {
    if (!s) return []
    const u = unwrap(s)
    if (u instanceof z.ZodArray && typeof seg === 'number') s = u.element
    else if (u instanceof z.ZodObject) s = u.shape[seg as string]
    else if (u instanceof z.ZodDiscriminatedUnion) {
      s = u.options.map((o: ZodTypeAny) => (unwrap(o) as z.AnyZodObject).shape[seg as string]).find(Boolean)
    } else return []
  }

  return s ? keysOf(s) : []
}

/** A copy of `raw` without the fields zod complained about (unknown keys, bad values), so defaults apply. */
function dropIssues(raw: unknown, issues: ZodIssue[]): unknown {
  const copy = structuredClone(raw)
  let placeholders = 0
  for (const issue of issues) {
    const paths =
      issue.code === 'unrecognized_keys'
        ? issue.keys.map((k) => [...issue.path, k])
        : issue.code === 'invalid_union_discriminator'
          ? [issue.path.slice(0, -1)] // the whole union member, so its default applies
          : [issue.path]
    for (const path of paths) {
      let node = copy as Record<string | number, unknown> | undefined
      for (const seg of path.slice(0, -1)) node = node?.[seg] as Record<string | number, unknown> | undefined
      const last = path.at(-1)
      if (!node || typeof node !== 'object' || last === undefined || Array.isArray(node)) continue
      // Required identifiers get a placeholder so the rest of the file can still be checked;
      // problems at these paths are already reported and filtered out by the caller.
      if (last === 'address') node[last] = '0.0.0.0'
      else if (last === 'name' || last === 'cluster') node[last] = `invalid-${placeholders++}`
      else delete node[last]
    }
  }

  return copy
}
