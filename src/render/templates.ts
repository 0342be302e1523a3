/**
 * Handlebars templates from templates/*.hbs, compiled once, escaped by default for the format of
 * the file each one writes (src/render/escape.ts):
 *
 * - `unit` (unit files, drop-ins): `{{x}}` is part of one command-line word (the strictest
 *   spelling); `{{value x}}` a plain directive value (Description=, EnvironmentFile=);
 *   `{{exe x}}` the executable word; `{{cmdline x}}` a whole command line in systemd's syntax;
 *   `{{sh x}}` a value inside a `/bin/sh -c '...'` script.
 * - `env` (environment files, values in double quotes): `{{x}}` escaped for inside the quotes.
 * - `static`: no variables at all.
 *
 * Every string or number in the data is wrapped so that Handlebars' escaping calls the format's
 * escaper (its `toHTML` hook) instead of HTML escaping; booleans stay as they are for `{{#if}}`.
 */
import Handlebars from 'handlebars'
import {readFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

import {envValue, RenderBug, unitArg, unitCmdline, unitExe, unitSh, unitValue} from './escape.js'

export type TemplateFormat = 'unit' | 'env' | 'static'

/** Each template's format: one place, so a new template must say what it writes. */
export const TEMPLATE_FORMATS: Record<string, TemplateFormat> = {
  'etcd.service': 'unit',
  'flanneld.service': 'unit',
  'docker-flannel.conf': 'unit',
  'etcd.conf': 'env',
  'sysctl.conf': 'static',
  'modules-load.conf': 'static',
}

const dir = fileURLToPath(new URL('../../templates/', import.meta.url))
const hb = Handlebars.create()
const cache = new Map<string, Handlebars.TemplateDelegate>()

/** A data value on its way into a template: knows its field and how to escape itself. */
class Value {
  constructor(
    readonly field: string,
    readonly raw: string,
    private readonly format: TemplateFormat,
  ) {}

  /** `{{{x}}}` (no escaping) would print this: refused, every value goes through an escaper. */
  toString(): string {
    throw new RenderBug(this.field, this.raw, 'written with {{{triple braces}}}, which skip escaping')
  }

  toHTML(): string {
    if (this.format === 'unit') return unitArg(this.field, this.raw)
    if (this.format === 'env') return envValue(this.field, this.raw)
    throw new RenderBug(this.field, this.raw, 'this template takes no values')
  }
}

function helper(name: string, escape: (field: string, v: string) => string) {
  hb.registerHelper(name, (v: unknown) => {
    if (!(v instanceof Value)) throw new Error(`kflan bug: {{${name}}} needs a string or number field, got ${typeof v}`)
    return new hb.SafeString(escape(v.field, v.raw))
  })
}

helper('value', unitValue)
helper('exe', unitExe)
helper('cmdline', unitCmdline)
helper('sh', unitSh)

function wrap(name: string, format: TemplateFormat, data: object): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(data)) {
    if (typeof v === 'string' || typeof v === 'number') out[k] = new Value(`${name}: ${k}`, String(v), format)
    else if (typeof v === 'boolean' || v === undefined) out[k] = v
    else
      throw new Error(`kflan bug: template ${name} got ${typeof v} for ${k}: only strings, numbers and booleans render`)
  }

  return out
}

export function renderTemplate(name: string, data: object): string {
  const format = TEMPLATE_FORMATS[name]
  if (!format) throw new Error(`kflan bug: template ${name} has no format in TEMPLATE_FORMATS`)
  let t = cache.get(name)
  if (!t) {
    t = hb.compile(readFileSync(`${dir}${name}.hbs`, 'utf8'), {strict: true})
    cache.set(name, t)
  }

  return t(wrap(name, format, data))
}
