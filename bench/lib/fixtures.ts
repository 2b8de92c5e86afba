// What every peer serves and is asked for: a Persontjenesten v3 person (synthetic) and the path that fetches it.

import { syntheticPersons, toPersonView } from '../../src/demo/synthetic-persons.ts'

/** The information parts the benchmark asks for (a typical EPJ look-up: identity, address, family, citizenship). */
export const benchParts: readonly string[] = [
  'Name', 'Birth', 'Gender', 'Status', 'NorwegianIdentificationNumber', 'ResidentialAddress',
  'MaritalStatus', 'Citizenship', 'FamilyRelation', 'AddressProtection', 'Death'
]

const person = syntheticPersons[0]
if (person === undefined) throw new TypeError('no synthetic person')

/** The upstream's answer to every person request: the v3 Person JSON of Kari Fjellheim (synthetic), ~3 KB. */
export const personBody: Buffer = Buffer.from(JSON.stringify(toPersonView(person, benchParts, 'restricted-access')))

/** GET path of one person, below the API base URL. */
export const personPath = `/api/v3/restricted-access/person/${person.id}?${benchParts.map(part => `informationParts=${part}`).join('&')}`

/** The API name the broker's tenants use. */
export const apiName = 'persontjenesten'

/** Scope of the benchmark tokens. */
export const benchScope = 'nhn:hgd-persontjenesten-api/restricted-access'

/**
 * The static header the plain proxies add: `DPoP` and a JWT-sized opaque string (as long as the fake
 * authority's tokens), so that nginx and @fastify/http-proxy send as many header bytes as the broker's token.
 */
export const staticAuthorization = `DPoP ${'x'.repeat(620)}`

/** The path of the streamed large response on the fake upstream; `?mb=N` sets its size. */
export const bigPath = '/big'
