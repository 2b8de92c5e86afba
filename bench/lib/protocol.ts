// Messages between the benchmark (parent) and a peer child process (bench/peer.ts).

export type PeerSpec =
  | { readonly kind: 'upstream' }
  | { readonly kind: 'fastify-proxy', readonly upstream: string, readonly authorization: string }
  /** Plain node:http + undici with a static header: the Node floor, with undici request() + pipe or undici stream(). */
  | { readonly kind: 'node-proxy', readonly upstream: string, readonly authorization: string, readonly client: 'request' | 'stream' }
  /** `config` is what a config file would hold (parsed by parseConfig); `source` the file it would be. */
  | { readonly kind: 'broker', readonly config: unknown, readonly source: string }

export type ParentMessage =
  | { readonly type: 'start', readonly spec: PeerSpec }
  | { readonly type: 'mark' }
  /** Stop (SIGTERM) this process when the parent goes away: nginx, which cannot notice that itself. */
  | { readonly type: 'watch', readonly pid: number }
  | { readonly type: 'unwatch', readonly pid: number }
  | { readonly type: 'stop' }

export type ChildReply =
  | { readonly type: 'ready', readonly url: string, readonly pid: number, readonly notes: readonly string[] }
  | { readonly type: 'mark', readonly monotonicUs: number, readonly memory: NodeJS.MemoryUsage }
  | { readonly type: 'error', readonly message: string }
