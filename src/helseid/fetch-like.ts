// The narrow slice of `fetch` the HelseID client needs; injected so tests and proxies can swap it.

/** A response as far as the HelseID client reads it. */
export interface FetchResponseLike {
  readonly status: number
  readonly headers: { get: (name: string) => string | null }
  readonly text: () => Promise<string>
}

/** Request options the HelseID client uses. */
export interface FetchInitLike {
  readonly method: string
  readonly headers: Record<string, string>
  readonly body?: string
  readonly signal?: AbortSignal
}

/** Anything shaped like WHATWG fetch for these calls (global fetch, undici's fetch with a dispatcher). */
export type FetchLike = (url: string, init: FetchInitLike) => Promise<FetchResponseLike>
