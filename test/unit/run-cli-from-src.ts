/**
 * Runs one kflan command from the TypeScript sources, as the CLI would (exit code, messages), so
 * unit tests can check the CLI's behaviour without a build: `node --import tsx THIS validate -i F`.
 * (bin/dev.js reads the built oclif.manifest.json and so runs dist/ when a build exists.)
 */
import {handle} from '@oclif/core'
import {fileURLToPath} from 'node:url'

const [name, ...argv] = process.argv.slice(2)
const root = fileURLToPath(new URL('../../', import.meta.url))
try {
  const mod = (await import(`../../src/commands/${name.replaceAll(' ', '/')}.ts`)) as {
    default: {run(argv: string[], opts: string): Promise<unknown>}
  }
  await mod.default.run(argv, root)
} catch (error) {
  await handle(error as Error)
}
