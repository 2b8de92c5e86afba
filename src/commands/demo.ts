// `demo` (what `npm start` runs): the broker against a local authority and a local Persontjenesten, with curl examples.

import { pino } from 'pino'
import type { CliIo } from '../cli.ts'
import { startDemo } from '../demo/demo-broker.ts'
import { demoNin } from '../demo/synthetic-persons.ts'
import { exitCodes } from '../errors.ts'
import { createLogger } from '../logging.ts'

/** Runs the demo until stopped. */
export async function runDemo (ports: { readonly proxyPort: number, readonly adminPort: number }, io: CliIo): Promise<number> {
  // Log lines go to stderr so the examples on stdout stay readable; they show what the broker logs (and what it never does).
  const logger = createLogger('info', pino.destination(2))
  let demo
  try {
    demo = await startDemo({ ...ports, logger })
  } catch (error) {
    if (typeof error === 'object' && error !== null && 'code' in error && error.code === 'EADDRINUSE') {
      io.err(`port ${ports.proxyPort} or ${ports.adminPort} is in use; try: helseid-broker demo --proxy-port 18480 --admin-port 18481`)
      return exitCodes.failure
    }
    throw error
  }
  const proxy = demo.broker.proxyUrl
  const admin = demo.broker.adminUrl
  io.out(`helseid-broker demo is running (everything on loopback, nothing leaves this machine)

  local HelseID-like authority  ${demo.authority.issuer}   (private_key_jwt, DPoP nonce required)
  local fake Persontjenesten    ${demo.persontjenesten.origin}   (verifies token, cnf.jkt and every DPoP proof)
  local fake Selvbetjening      ${demo.selvbetjening.origin}   (client key expiry, read at start and shown in /status)
  broker proxy listener         ${proxy}   (what the EPJ calls: no credentials needed)
  broker admin listener         ${admin}   (health, readiness, metrics, status, docs)

Try it: the EPJ sends a plain request, the broker adds a DPoP-bound HelseID token and a fresh proof.

  # look up a (synthetic) person by national identity number, the NIN in the form body, never in the URL
  curl -s '${proxy}/granfjelldal/persontjenesten/api/v3/restricted-access/person/get-by-nin?informationParts=Name&informationParts=Birth' --data-urlencode 'nin=${demoNin}'

  # the same API for another tenant: a multi-tenant supplier client acting for 999977774:999977775
  curl -s ${proxy}/fjordvik/persontjenesten/api/v3/restricted-access/event/latest

  # an error the broker produces itself: problem+json with a BROKER_* code
  curl -si ${proxy}/nosuchtenant/persontjenesten/api/v3/restricted-access/event/latest

  # what the broker holds: tenants, key ids, token lifetimes (never a token or key)
  curl -s ${admin}/status
  curl -s ${admin}/readyz
  curl -s ${admin}/metrics | grep -E 'helseid_broker_(token|key)_expiry'
  # API documentation: ${admin}/docs

Stop with Ctrl-C.`)
  await io.untilStopped()
  await demo.close()
  return exitCodes.ok
}
