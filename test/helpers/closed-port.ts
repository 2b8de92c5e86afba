// A loopback port nothing listens on, for "unreachable" cases.

import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

/** Binds a free port on 127.0.0.1 and closes it again at once. */
export async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise(resolve => server.close(resolve))
  return port
}
