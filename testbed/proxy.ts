import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http'
import { rm } from 'node:fs/promises'

/** What the proxy does with one request. */
export type Fault = 'forward' | 'reset' | 'hang' | { status: number; message: string }

/** Decides each request's fate; may act on the engine first, as another process would. */
export type Hook = (request: { method: string; url: string }) => Promise<Fault> | Fault

export interface Proxy {
  host: string
  /** Every request seen, in order, as `METHOD url`. */
  seen: string[]
  /** Connections the clients opened. */
  readonly connections: number
  close(): Promise<void>
}

/**
 * An HTTP proxy, on a unix socket or a loopback TCP port (0: any free one), in front of a real
 * engine, so that faults happen at a chosen request while everything else is the engine's own
 * behaviour.
 */
export async function startProxy(engineSocket: string, listenOn: string | number, hook: Hook): Promise<Proxy> {
  const seen: string[] = []
  const hanging = new Set<ServerResponse>()
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`)
    void Promise.resolve(hook({ method: req.method ?? 'GET', url: req.url ?? '/' })).then(fault => {
      if (fault === 'forward') return forward(engineSocket, req, res)
      if (fault === 'reset') return req.socket.destroy()
      if (fault === 'hang') return void hanging.add(res)
      res
        .writeHead(fault.status, { 'Content-Type': 'application/json' })
        .end(JSON.stringify({ message: fault.message }))
    })
  })
  let connections = 0
  server.on('connection', () => connections++)
  const tcp = typeof listenOn === 'number'
  if (tcp) await new Promise<void>(resolve => server.listen(listenOn, '127.0.0.1', resolve))
  else {
    await rm(listenOn, { force: true })
    await new Promise<void>(resolve => server.listen(listenOn, resolve))
  }
  const port = tcp ? (server.address() as { port: number }).port : 0
  return {
    host: tcp ? `tcp://127.0.0.1:${port}` : `unix://${listenOn}`,
    seen,
    get connections() {
      return connections
    },
    close: async () => {
      for (const res of hanging) res.socket?.destroy()
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}

function forward(engineSocket: string, req: IncomingMessage, res: ServerResponse): void {
  const upstream = request(
    { socketPath: engineSocket, method: req.method, path: req.url, headers: req.headers },
    answer => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    }
  )
  upstream.on('error', () => res.socket?.destroy())
  req.pipe(upstream)
}
