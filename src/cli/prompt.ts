/** Yes/no confirmation on a terminal; refuses (false) when stdin is not a terminal and --yes was not given. */
// eslint-disable-next-line n/no-unsupported-features/node-builtins -- readline/promises is stable since Node 17; the rule's data marks it experimental
import {createInterface} from 'node:readline/promises'

export async function confirm(question: string, yes: boolean): Promise<boolean> {
  if (yes) return true
  if (!process.stdin.isTTY) return false
  const rl = createInterface({input: process.stdin, output: process.stderr})
  try {
    const answer = await rl.question(`${question} [y/N] `)
    return /^y(es)?$/i.test(answer.trim())
  } finally {
    rl.close()
  }
}
