import { describe, expect, test } from '@jest/globals'
import { knownKeys } from '../../src/engine/ssh'

const KEY = 'AAAAC3NzaC1lZDI1NTE5AAAAIMGFKErtNBk2ZKKbSRhDl+Ru/opIErG0r/Z+icMZvsdU'
const OTHER = 'AAAAC3NzaC1lZDI1NTE5AAAAIHBlYWNlLWFuZC1xdWlldC1uby1zdWNoLWtleS0x'
// `ssh-keygen -H` of "[127.0.0.1]:2222 ssh-ed25519 KEY".
const HASHED = `|1|ZqLlmEfvukIzVI5YYybRgSNxj8k=|+PTabbkI9v2nCMdipL3X8OvSxDg= ssh-ed25519 ${KEY}`

const blobs = (text: string, host: string, port: number): string[] =>
  knownKeys(text, host, port).keys.map(k => k.blob.toString('base64'))

describe('knownKeys: the host keys known_hosts lists for one host', () => {
  test.each([
    ['a bare name on port 22', `build.example ssh-ed25519 ${KEY}`, 'build.example', 22, [KEY]],
    ['one of several names', `a.example,build.example,10.0.0.5 ssh-ed25519 ${KEY}`, '10.0.0.5', 22, [KEY]],
    ['[host]:port for another port', `[127.0.0.1]:2222 ssh-ed25519 ${KEY}`, '127.0.0.1', 2222, [KEY]],
    ['a bare name does not cover another port', `127.0.0.1 ssh-ed25519 ${KEY}`, '127.0.0.1', 2222, []],
    ['a hashed name (ssh-keygen -H)', HASHED, '127.0.0.1', 2222, [KEY]],
    ['a hashed name of another host', HASHED, '127.0.0.2', 2222, []],
    ['wildcards never match: refused rather than guessed', `*.example ssh-ed25519 ${KEY}`, 'build.example', 22, []],
    ['a negated name excludes the line', `build.example,!build.example ssh-ed25519 ${KEY}`, 'build.example', 22, []],
    [
      '@cert-authority lines are not host keys',
      `@cert-authority build.example ssh-ed25519 ${KEY}`,
      'build.example',
      22,
      []
    ],
    [
      'comments and blank lines',
      `# build.example ssh-ed25519 ${OTHER}\n\nbuild.example ssh-ed25519 ${KEY}`,
      'build.example',
      22,
      [KEY]
    ]
  ])('%s', (_, text, host, port, expected) => {
    expect(blobs(text, host, port)).toEqual(expected)
  })

  test('@revoked keys are returned apart, whatever host they name', () => {
    const { revoked } = knownKeys(`@revoked * ssh-ed25519 ${OTHER}`, 'build.example', 22)
    expect(revoked.map(b => b.toString('base64'))).toEqual([OTHER])
  })
})
