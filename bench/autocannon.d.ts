// The part of autocannon's programmatic API the benchmark uses (the package ships no types).

declare module 'autocannon' {
  import type { EventEmitter } from 'node:events'

  namespace autocannon {
    interface Histogram {
      readonly average: number
      readonly mean: number
      readonly stddev: number
      readonly min: number
      readonly max: number
      readonly p2_5: number
      readonly p50: number
      readonly p90: number
      readonly p97_5: number
      readonly p99: number
    }
    interface Result {
      readonly requests: Histogram & { readonly total: number, readonly sent: number }
      readonly latency: Histogram
      readonly throughput: Histogram & { readonly total: number }
      readonly duration: number
      readonly errors: number
      readonly timeouts: number
      readonly resets: number
      readonly non2xx: number
      readonly '2xx': number
      readonly statusCodeStats: Readonly<Record<string, { readonly count: number }>>
    }
    interface Request {
      readonly method?: string
      readonly path?: string
      readonly headers?: Readonly<Record<string, string>>
      readonly body?: string | Buffer
    }
    interface Options {
      readonly url: string
      readonly connections?: number
      readonly duration?: number
      readonly amount?: number
      readonly pipelining?: number
      readonly timeout?: number
      readonly method?: string
      readonly headers?: Readonly<Record<string, string>>
      readonly requests?: readonly Request[]
    }
    /** Emits 'response' (client, statusCode, resBytes, responseTimeMs) per response; resolves with the result. */
    interface Instance extends EventEmitter, PromiseLike<Result> {
      stop (): void
    }
  }

  function autocannon (options: autocannon.Options): autocannon.Instance
  export = autocannon
}
