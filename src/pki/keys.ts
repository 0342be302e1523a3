/**
 * Keys: node:crypto generates, parses and exports them (node-forge cannot read
 * EC keys, and its RSA is pure JS and slow).
 */
import {createPrivateKey, generateKeyPair, type KeyObject} from 'node:crypto'
import {promisify} from 'node:util'

import type {KeyAlgorithm} from './types.js'

const generateKeyPairAsync = promisify(generateKeyPair)

export const RSA_BITS = 2048
export const EC_CURVE = 'prime256v1'

export interface GeneratedKey {
  privateKey: KeyObject
  /** SEC1 ("EC PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY") PEM, as cfssl writes them. */
  privateKeyPem: string
  /** DER SubjectPublicKeyInfo, ready to embed in a certificate. */
  spkiDer: Buffer
}

/**
 * A new key pair: ECDSA P-256 or RSA 2048. Asynchronous so that RSA
 * generation runs on the libuv thread pool, several keys at once.
 */
export async function generateKey(algorithm: KeyAlgorithm): Promise<GeneratedKey> {
  const {privateKey, publicKey} =
    algorithm === 'ecdsa'
      ? await generateKeyPairAsync('ec', {namedCurve: EC_CURVE})
      : await generateKeyPairAsync('rsa', {modulusLength: RSA_BITS, publicExponent: 0x1_00_01})
  return {
    privateKey,
    privateKeyPem: exportPrivateKeyPem(privateKey),
    spkiDer: publicKey.export({type: 'spki', format: 'der'}),
  }
}

export function exportPrivateKeyPem(key: KeyObject): string {
  const type = key.asymmetricKeyType === 'ec' ? 'sec1' : 'pkcs1'
  return key.export({type, format: 'pem'}).toString()
}

/** 'ecdsa' for an EC P-256 key, 'rsa' for RSA, 'other' for anything else. */
export function keyAlgorithmOf(key: KeyObject): KeyAlgorithm | 'other' {
  if (key.asymmetricKeyType === 'rsa') return 'rsa'
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === EC_CURVE) return 'ecdsa'
  return 'other'
}

/** Parse a private key PEM (PKCS#8, SEC1 or PKCS#1); undefined if it is not one. The error text is dropped: it is never about the key's content, but nothing here risks echoing it. */
export function parsePrivateKey(pem: string | Buffer): KeyObject | undefined {
  try {
    const key = createPrivateKey({key: pem, format: 'pem'})
    return key.type === 'private' ? key : undefined
  } catch {
    return undefined
  }
}
