import { request } from 'node:http'

export interface ApiResponse {
  status: number
  body: string
}

// Pinned so answers keep the shape the bed parses whatever the engine's newest API is.
// Every engine the bed runs speaks it: Docker 20.10 (1.41), Docker 26 (1.24-1.45), Docker 28 (1.24-1.51),
// Podman 4.3 (1.41 compat).
export const API_VERSION = 'v1.41'

/**
 * One request on the engine socket; `path` as given, with no version prefix (/_ping, /v1.45/...,
 * /v4.3.1/libpod/...).
 */
export function rawApi(socket: string, method: string, path: string, timeoutMs = 30_000): Promise<ApiResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, method, path, timeout: timeoutMs }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} on ${socket}: no answer in ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end()
  })
}

/** A request at the pinned API version. */
export function api(socket: string, method: string, path: string, timeoutMs = 30_000): Promise<ApiResponse> {
  return rawApi(socket, method, `/${API_VERSION}${path}`, timeoutMs)
}

export async function apiJson<T>(socket: string, method: string, path: string): Promise<T> {
  const res = await api(socket, method, path)
  if (res.status < 200 || res.status >= 300) {
    throw new Error(`${method} ${path} answered ${res.status}: ${res.body.trim()}`)
  }
  return JSON.parse(res.body) as T
}

/**
 * Whether the engine switches POST /grpc to h2c: the daemon's own BuildKit. buildx asks the same
 * before it picks its `docker` driver; where the upgrade fails it falls back to the
 * docker-container driver, which has the engine pull moby/buildkit from Docker Hub.
 */
export function upgradesToGrpc(socket: string, timeoutMs = 10_000): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const req = request({
      socketPath: socket,
      method: 'POST',
      path: '/grpc',
      headers: { Connection: 'Upgrade', Upgrade: 'h2c' },
      timeout: timeoutMs
    })
    req.on('upgrade', (res, stream) => {
      stream.destroy()
      resolve(res.statusCode === 101)
    })
    req.on('response', res => {
      res.resume()
      resolve(false)
    })
    req.on('timeout', () => req.destroy(new Error(`POST /grpc on ${socket}: no answer in ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end()
  })
}
