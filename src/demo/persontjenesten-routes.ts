// The Persontjenesten v3 operations of one access tree (persontjenesten.md §1.3), served from the synthetic data.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { findPersonById, findPersonByNin, informationParts, syntheticEvents, toPersonView, type SyntheticEvent, type SyntheticPerson } from './synthetic-persons.ts'

/** Which tree the routes serve; decides the scope and what restricted-access withholds. */
export type AccessTree = 'full-access' | 'restricted-access'

/** Lets the routes record why they refused a request. */
export type RecordOutcome = (request: FastifyRequest, outcome: string) => void

const maxBatchItems = 100
const maxEvents = 1000
const canonicalParts = new Map(informationParts.map(part => [part.toLowerCase(), part]))

/** Mounts person and event routes on `app` (already prefixed with /api/v3/{access}). */
export function registerPersontjenestenRoutes (app: FastifyInstance, access: AccessTree, recordOutcome: RecordOutcome): void {
  const problem = (request: FastifyRequest, reply: FastifyReply, status: number, title: string, detail: string): FastifyReply => {
    recordOutcome(request, `${title.toLowerCase().replaceAll(' ', '_')}:${detail}`)
    return reply.code(status).type('application/problem+json; charset=utf-8').send({
      type: `https://tools.ietf.org/html/rfc9110#section-15.5.${status === 404 ? 5 : status === 415 ? 16 : 1}`,
      title,
      status,
      detail
    })
  }

  /** Parses informationParts and includeHistory, or answers 400 and returns undefined. */
  const readParts = (request: FastifyRequest, reply: FastifyReply): readonly string[] | undefined => {
    const query = queryOf(request)
    const requested = splitValues(query.getAll('informationParts'))
    if (requested.length === 0) {
      problem(request, reply, 400, 'Bad Request', 'The informationParts field is required.')
      return undefined
    }
    const parts = requested.map(part => canonicalParts.get(part.toLowerCase()))
    const unknown = requested.find((_part, index) => parts[index] === undefined)
    if (unknown !== undefined) {
      problem(request, reply, 400, 'Bad Request', `The value '${unknown}' is not valid for informationParts.`)
      return undefined
    }
    const includeHistory = query.get('includeHistory')
    if (includeHistory !== null && !/^(true|false)$/i.test(includeHistory)) {
      problem(request, reply, 400, 'Bad Request', `The value '${includeHistory}' is not valid for includeHistory.`)
      return undefined
    }
    return [...new Set(parts.filter((part): part is string => part !== undefined))]
  }

  /** The form body's values for `name` (repeated keys or comma-separated), or answers 400/415 and returns undefined. */
  const readFormValues = (request: FastifyRequest, reply: FastifyReply, name: string): readonly string[] | undefined => {
    if (request.headers['content-type']?.split(';')[0]?.trim().toLowerCase() !== 'application/x-www-form-urlencoded') {
      problem(request, reply, 415, 'Unsupported Media Type', 'The request body must be application/x-www-form-urlencoded.')
      return undefined
    }
    return splitValues(new URLSearchParams(typeof request.body === 'string' ? request.body : '').getAll(name))
  }

  const view = (person: SyntheticPerson, parts: readonly string[]): Record<string, unknown> => toPersonView(person, parts, access)

  app.get<{ Params: { id: string } }>('/person/:id', async (request, reply) => {
    const parts = readParts(request, reply)
    if (parts === undefined) return reply
    const person = findPersonById(request.params.id)
    if (person === undefined) return problem(request, reply, 404, 'Not Found', 'No person found')
    return view(person, parts)
  })

  app.post('/person/get-by-nin', async (request, reply) => {
    const parts = readParts(request, reply)
    if (parts === undefined) return reply
    const nins = readFormValues(request, reply, 'nin')
    if (nins === undefined) return reply
    const [nin] = nins
    if (nins.length !== 1 || nin === undefined || nin.length > 12) return problem(request, reply, 400, 'Bad Request', 'The nin field is required and must be 1 to 12 characters.')
    const person = findPersonByNin(nin)
    if (person === undefined) return problem(request, reply, 404, 'Not Found', 'No person found')
    return view(person, parts)
  })

  const bulk = (field: string, find: (value: string) => SyntheticPerson | undefined) => async (request: FastifyRequest, reply: FastifyReply) => {
    const parts = readParts(request, reply)
    if (parts === undefined) return reply
    const values = readFormValues(request, reply, field)
    if (values === undefined) return reply
    if (values.length === 0 || values.length > maxBatchItems) {
      return problem(request, reply, 400, 'Bad Request', `The ${field} field must hold 1 to ${maxBatchItems} values.`)
    }
    // Unknown values are left out of the answer (the real service's behaviour is undocumented).
    return values.map(find).filter(person => person !== undefined).map(person => view(person, parts))
  }
  app.post('/person/bulk-by-nin', bulk('nins', findPersonByNin))
  app.post('/person/bulk-by-id', bulk('personIds', findPersonById))

  app.get('/event/latest', async (request, reply) => {
    const latest = syntheticEvents.at(-1)
    if (latest === undefined) return problem(request, reply, 404, 'Not Found', 'Event document not found')
    return toEventDocument(latest)
  })

  app.get('/event', async (request, reply) => {
    const query = queryOf(request)
    const sequenceNumber = query.get('sequenceNumber')
    const maxLimit = query.get('maxLimit')
    if (sequenceNumber !== null && !/^\d{1,18}$/.test(sequenceNumber)) {
      return problem(request, reply, 400, 'Bad Request', `The value '${sequenceNumber}' is not valid for sequenceNumber.`)
    }
    if (maxLimit !== null && !/^\d{1,9}$/.test(maxLimit)) return problem(request, reply, 400, 'Bad Request', `The value '${maxLimit}' is not valid for maxLimit.`)
    const eventTypes = splitValues(query.getAll('eventTypes'))
    const from = sequenceNumber === null ? 0 : Number(sequenceNumber)
    const limit = Math.min(maxLimit === null ? maxEvents : Number(maxLimit), maxEvents)
    const results = syntheticEvents
      .filter(event => event.sequenceNumber >= from && (eventTypes.length === 0 || eventTypes.includes(event.eventType)))
      .slice(0, limit)
      .map(toEventDocument)
    return { results, startIndex: 0, endIndex: Math.max(results.length - 1, 0) }
  })
}

function toEventDocument (event: SyntheticEvent): Record<string, string> {
  return { sequenceNumber: String(event.sequenceNumber), personId: event.personId, eventType: event.eventType, nin: event.nin }
}

function queryOf (request: FastifyRequest): URLSearchParams {
  const index = request.url.indexOf('?')
  return new URLSearchParams(index === -1 ? '' : request.url.slice(index + 1))
}

/** Repeated keys and comma-separated values both count (persontjenesten.md §1.3). */
function splitValues (values: readonly string[]): readonly string[] {
  return values.flatMap(value => value.split(',')).map(value => value.trim()).filter(value => value !== '')
}
