/** Yes/no confirmation on a terminal; refuses (false) when stdin is not a terminal and --yes was not given. */
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
