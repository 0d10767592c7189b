import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { createConnection } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort } from './engine'
import { inPrivateMounts, spawnLogged, stopChild, waitUntilReady } from './process'

const run = promisify(execFile)
/** Where scripts/install-testbed.sh unpacks bookworm's openssh-server (no service is installed). */
const OPENSSH_DIR = process.env.RECLAIM_OPENSSH_DIR || '/opt/reclaim-testbed/openssh'
const READY_TIMEOUT_MS = 30_000

export interface SshEndpoint {
  /** ssh://root@127.0.0.1:<port> */
  host: string
  /** An ssh-agent holding the one key the server accepts. */
  agentSocket: string
  /** A HOME whose .ssh/known_hosts lists the server's host key. */
  home: string
  /** A HOME whose known_hosts lists another key for the same host. */
  wrongHome: string
  stop(): Promise<void>
}

/**
 * sshd needs its privilege separation user and /run/sshd, which this machine need not have: it
 * runs in a mount namespace of its own where a copy of /etc/passwd with that user is bound over
 * the real one and /run is a private tmpfs. Nothing outside the namespace changes.
 */
const NAMESPACE_SCRIPT = [
  'set -e',
  'mount --bind "$1" /etc/passwd',
  'mount -t tmpfs -o mode=0755 tmpfs /run',
  'mkdir -m 0755 /run/sshd',
  'shift',
  'exec "$@"'
].join('\n')

async function keygen(file: string): Promise<string> {
  await run('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'reclaim-testbed', '-f', file])
  return (await readFile(`${file}.pub`, 'utf8')).trim()
}

function sshdConfig(dir: string, port: number): string {
  return [
    `ListenAddress 127.0.0.1:${port}`,
    `HostKey ${join(dir, 'host_key')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'AuthenticationMethods publickey',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    // The files live under /tmp, which is world-writable.
    'StrictModes no',
    'PermitRootLogin prohibit-password',
    'AllowUsers root',
    'AllowTcpForwarding no',
    'X11Forwarding no',
    'PermitTTY no',
    ''
  ].join('\n')
}

/** The one command the key may run: the docker CLI's stdio bridge to the engine's socket, as dockerode asks. */
function authorizedKeys(clientKey: string, engineSocket: string, dir: string): string {
  const command = `DOCKER_HOST=unix://${engineSocket} DOCKER_CONFIG=${join(dir, 'docker-config')} exec /usr/bin/docker system dial-stdio`
  return `command="${command}",restrict ${clientKey}\n`
}

function listening(port: number): Promise<boolean> {
  return new Promise(resolve => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => {
      socket.destroy()
      resolve(true)
    })
    socket.on('error', () => resolve(false))
  })
}

async function startAgent(dir: string, key: string): Promise<{ socket: string; stop(): Promise<void> }> {
  const socket = join(dir, 'agent.sock')
  const child = spawnLogged('/usr/bin/ssh-agent', ['-D', '-a', socket], join(dir, 'agent.log'))
  const stop = async (): Promise<void> => {
    await stopChild(child, 'ssh-agent')
  }
  try {
    await waitUntilReady(child, 'ssh-agent', join(dir, 'agent.log'), async () => existsSync(socket), READY_TIMEOUT_MS)
    await run('/usr/bin/ssh-add', ['-q', key], { env: { ...process.env, SSH_AUTH_SOCK: socket } })
    return { socket, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

/** A HOME with .ssh/known_hosts holding one line for the server. */
async function homeKnowing(dir: string, port: number, hostKey: string): Promise<string> {
  await mkdir(join(dir, '.ssh'), { recursive: true })
  await writeFile(join(dir, '.ssh', 'known_hosts'), `[127.0.0.1]:${port} ${hostKey.split(' ').slice(0, 2).join(' ')}\n`)
  return dir
}

/**
 * A private sshd on a loopback port in front of the engine at engineSocket, an ssh-agent with the
 * client key, and HOMEs whose known_hosts do and do not list the server's key. Stopped by pid.
 */
export async function startSshd(dir: string, engineSocket: string): Promise<SshEndpoint> {
  const sshd = join(OPENSSH_DIR, 'root', 'usr', 'sbin', 'sshd')
  if (!existsSync(sshd))
    throw new Error(`${sshd} is missing: run scripts/install-testbed.sh, which unpacks bookworm's openssh-server there`)
  await mkdir(join(dir, 'docker-config'), { recursive: true })
  const hostKey = await keygen(join(dir, 'host_key'))
  const otherKey = await keygen(join(dir, 'other_host_key'))
  const clientKey = await keygen(join(dir, 'client_key'))
  const port = await freePort()
  await writeFile(join(dir, 'sshd_config'), sshdConfig(dir, port))
  await writeFile(join(dir, 'authorized_keys'), authorizedKeys(clientKey, engineSocket, dir))
  await writeFile(
    join(dir, 'passwd'),
    `${await readFile('/etc/passwd', 'utf8')}sshd:x:64999:65534:sshd privilege separation:/run/sshd:/usr/sbin/nologin\n`
  )
  const log = join(dir, 'sshd.log')
  const args = inPrivateMounts(
    NAMESPACE_SCRIPT,
    'sshd-ns',
    join(dir, 'passwd'),
    sshd,
    '-D',
    '-e',
    '-f',
    join(dir, 'sshd_config')
  )
  const child = spawnLogged('/usr/bin/unshare', args, log, {
    LD_LIBRARY_PATH: join(OPENSSH_DIR, 'root', 'usr', 'lib', 'x86_64-linux-gnu')
  })
  const stopSshd = async (): Promise<void> => {
    await stopChild(child, 'sshd')
  }
  try {
    await waitUntilReady(child, 'sshd', log, () => listening(port), READY_TIMEOUT_MS)
    const agent = await startAgent(dir, join(dir, 'client_key'))
    return {
      host: `ssh://root@127.0.0.1:${port}`,
      agentSocket: agent.socket,
      home: await homeKnowing(join(dir, 'home'), port, hostKey),
      wrongHome: await homeKnowing(join(dir, 'wrong-home'), port, otherKey),
      stop: async () => {
        await agent.stop()
        await stopSshd()
      }
    }
  } catch (err) {
    await stopSshd()
    throw err
  }
}
