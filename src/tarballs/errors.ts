/**
 * What can go wrong with a download, for the user: the error classes (a failed download exits 1,
 * wrong bytes are an input error, exit 2) and network errors in words with what to do.
 */
import {InputError, KflanError} from '../errors.js'

/** A download that did not complete (network, HTTP status, TLS): exit 1, nothing installed. */
export class DownloadError extends KflanError {
  constructor(message: string, hint: string) {
    super(message, {hint, exitCode: 1})
    this.name = 'DownloadError'
  }
}

/** The bytes are not the ones the inventory names: an input error (exit 2). */
export class DigestMismatchError extends InputError {
  constructor(
    readonly source: string,
    readonly expected: string,
    readonly actual: string,
    field: string,
  ) {
    super(
      `${field} ${source}: sha256 mismatch\n  expected: ${expected} (${field.replace(/\.tarball$/, '.sha256')})\n  actual:   ${actual}`,
      {
        hint: `the file is not the one the inventory names: check the URL and the sha256 (the release's SHA256SUMS); nothing was installed on any host`,
      },
    )
    this.name = 'DigestMismatchError'
  }
}

/** Why a request failed, in words, with what to do about it. */
export function describeNetworkError(err: NodeJS.ErrnoException, url: URL): {message: string; hint: string} {
  const where = `${url.hostname}:${url.port || (url.protocol === 'https:' ? 443 : 80)}`
  const code = err.code ?? ''
  const local =
    'or download the file yourself and point the tarball field at the local path (its sha256 is still checked)'
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return {
      message: `cannot resolve ${url.hostname} (${code})`,
      hint: `check the URL's host name and this machine's DNS, ${local}`,
    }
  if (['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT'].includes(code))
    return {
      message: `cannot connect to ${where} (${code})`,
      hint: `check the URL and that this machine can reach the server (proxy, firewall), ${local}`,
    }
  if (code === 'KFLAN_IDLE')
    return {
      message: `no data from ${where} for ${err.message}`,
      hint: `the server stopped sending; run the command again (a partial file is never used), ${local}`,
    }
  if (/CERT|SELF_SIGNED|UNABLE_TO|ERR_TLS|HOSTNAME|ALTNAME/.test(code) || /certificate/i.test(err.message)) {
    return {
      message: `TLS certificate of ${where} not trusted (${code || err.message})`,
      hint: 'for a server with a private CA, start kflan with NODE_EXTRA_CA_CERTS=/path/to/ca.pem; or use the http:// URL (the sha256 still protects the file)',
    }
  }

  if (['ECONNABORTED', 'ECONNRESET', 'EPIPE'].includes(code) || err.message === 'aborted')
    return {
      message: `connection to ${where} lost during the download (${code || err.message})`,
      hint: `run the command again (a partial file is never used), ${local}`,
    }
  return {message: `${err.message}${code ? ` (${code})` : ''}`, hint: `check the URL, ${local}`}
}
