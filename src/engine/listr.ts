/** How every listr2 task list of kflan renders: progress on a TTY, plain lines in logs and CI. */
export type Output = 'auto' | 'silent'

export function listrOptions(output: Output) {
  return {
    concurrent: false,
    exitOnError: true,
    renderer: output === 'silent' ? 'silent' : 'default',
    // Without a TTY: one line per task start, output and end, readable in a log file.
    fallbackRenderer: 'simple',
    rendererOptions: {collapseErrors: false},
    collectErrors: false,
    // listr2's own SIGINT handler exits 127 at once; src/engine/interrupt.ts handles signals instead.
    registerSignalListeners: false,
  } as const
}
