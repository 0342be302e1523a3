/** Handlebars templates from templates/*.hbs, compiled once. Output is plain text: no HTML escaping. */
import Handlebars from 'handlebars'
import {readFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

const dir = fileURLToPath(new URL('../../templates/', import.meta.url))
const cache = new Map<string, Handlebars.TemplateDelegate>()

export function renderTemplate(name: string, data: object): string {
  let t = cache.get(name)
  if (!t) {
    t = Handlebars.compile(readFileSync(`${dir}${name}.hbs`, 'utf8'), {noEscape: true, strict: true})
    cache.set(name, t)
  }
  return t(data)
}
