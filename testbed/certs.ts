import { execFile } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { bedEnv } from './process'

const run = promisify(execFile)
const DAYS = '2'

/** Where the PEM files of one certificate authority and the certificates it signed are. */
export interface Pki {
  /** The CA's certificate: what a client or server trusts. */
  ca: string
  server: { cert: string; key: string }
  client: { cert: string; key: string }
}

async function openssl(args: string[]): Promise<void> {
  await run('/usr/bin/openssl', args, { env: bedEnv() })
}

/** P-256 keys: made in milliseconds, and accepted by dockerd's Go TLS stack and by Node. */
const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

async function makeCa(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}-ca.pem`)
  const key = join(dir, `${name}-ca-key.pem`)
  await openssl([
    'req',
    '-x509',
    ...EC_KEY,
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    DAYS,
    '-subj',
    `/CN=${name} test CA`
  ])
  return { cert, key }
}

async function sign(
  dir: string,
  ca: { cert: string; key: string },
  name: string,
  extensions: string[]
): Promise<{ cert: string; key: string }> {
  const key = join(dir, `${name}-key.pem`)
  const csr = join(dir, `${name}.csr`)
  const cert = join(dir, `${name}-cert.pem`)
  const ext = join(dir, `${name}.ext`)
  await writeFile(ext, `${extensions.join('\n')}\n`)
  await openssl(['req', ...EC_KEY, '-keyout', key, '-out', csr, '-subj', `/CN=${name}`])
  await openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-CAcreateserial',
    '-out',
    cert,
    '-days',
    DAYS,
    '-extfile',
    ext
  ])
  return { cert, key }
}

/**
 * A CA with a server certificate for the loopback engine (127.0.0.1 and localhost) and a client
 * certificate, all made with openssl under dir, named after `name`.
 */
export async function makePki(dir: string, name: string): Promise<Pki> {
  await mkdir(dir, { recursive: true })
  const ca = await makeCa(dir, name)
  const server = await sign(dir, ca, `${name}-server`, [
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
    'extendedKeyUsage=serverAuth'
  ])
  const client = await sign(dir, ca, `${name}-client`, ['extendedKeyUsage=clientAuth'])
  return { ca: ca.cert, server, client }
}
