/**
 * What kflan itself left on a host: its state directory (the managed list and backups, see
 * src/remote/files.ts), runtime files, the drop-in of an interrupted reset, enable symlinks.
 */
import {parseStatOutput, type RemoteFileState} from '../remote/file-stat.js'
import {shq} from '../remote/shell.js'
import {statePaths} from '../remote/state-dir.js'
import {lines, type Probe} from './probe.js'

export const stateDirProbe = (stateDir?: string): Probe<boolean> => ({
  id: 'state',
  sh: `if [ -d ${shq(statePaths(stateDir).stateDir)} ]; then echo exists=1; fi`,
  parse: (o) => lines(o.stdout).includes('exists=1'),
})

/**
 * Every file in the managed list (kflan created it) or with a backup (kflan overwrote it), with
 * its state; no content hashes. The output is parseStatOutput's format.
 */
export function kflanFilesProbe(stateDir?: string): Probe<Map<string, RemoteFileState>> {
  const sp = statePaths(stateDir)
  return {
    id: 'kflan-files',
    sh: [
      `M=${shq(sp.managed)}; B=${shq(sp.backup)}`,
      // kind (F file, X other, N none), path, managed (M/-), backup (B/-), mode.
      `{ cat "$M" 2>/dev/null; if [ -d "$B" ]; then (cd "$B" && find . ! -type d | sed 's|^\\.||'); fi; } | sort -u | while IFS= read -r p; do`,
      `  case "$p" in /*) ;; *) continue ;; esac`,
      `  if grep -qxF -- "$p" "$M" 2>/dev/null; then m=M; else m=-; fi`,
      `  if [ -e "$B$p" ] || [ -L "$B$p" ]; then b=B; else b=-; fi`,
      `  if [ -f "$p" ]; then printf 'F\\t%s\\t-\\t%s\\t-\\t0\\t%s\\t%s\\n' "$p" "$(stat -L -c %a -- "$p")" "$m" "$b";`,
      `  elif [ -e "$p" ] || [ -L "$p" ]; then printf 'X\\t%s\\t%s\\t%s\\n' "$p" "$m" "$b"; else printf 'N\\t%s\\t%s\\t%s\\n' "$p" "$m" "$b"; fi`,
      `done`,
    ].join('\n'),
    parse: (o) => parseStatOutput(o.stdout),
  }
}

/** Which of `paths` exist (any kind). */
export function existingProbe(id: string, paths: string[]): Probe<string[]> {
  return {
    id,
    sh: `for f in ${paths.map(shq).join(' ')}; do if [ -e "$f" ]; then echo "$f"; fi; done`,
    parse: (o) => lines(o.stdout),
  }
}

/** `*.wants/` symlinks of units under /etc/systemd/system (systemctl disable removes them). */
export function wantsProbe(units: string[]): Probe<string[]> {
  return {
    id: 'wants',
    sh: `for f in ${units.map((u) => `/etc/systemd/system/*.wants/${shq(u)}`).join(' ')}; do if [ -L "$f" ]; then echo "$f"; fi; done`,
    parse: (o) => lines(o.stdout),
  }
}
