// Synthetic Persontjenesten v3 data for the demo: five invented persons (RT-style NINs, birth month + 65) and an event feed.

import { createHash } from 'node:crypto'

/** The 35 `InformationPart` values of Persontjenesten v3. */
export const informationParts: readonly string[] = [
  'AddressProtection', 'CitizenshipRetention', 'ResidentialAddress', 'UseOfSamiLanguage', 'SharedResidence', 'Death',
  'FalseIdentity', 'FamilyRelation', 'Birth', 'BirthInNorway', 'ParentalResponsibility', 'SamiParliamentElectoralRegistryStatus',
  'NorwegianIdentificationNumber', 'IdentityVerification', 'ImmigrationToNorway', 'Gender', 'ResiduaryEstateContactInformation',
  'IdentificationDocument', 'Name', 'ResidencePermit', 'StayOnSvalbard', 'PresentAddress', 'PostalAddress', 'ForeignPostalAddress',
  'PreferredContactAddress', 'MaritalStatus', 'Citizenship', 'Status', 'ForeignPersonIdentificationNumber', 'EmigrationFromNorway',
  'ImmigrationAuthoritiesIdentificationNumber', 'GuardianshipOrFuturePowerOfAttorney', 'DeprivedLegalAuthority',
  'CommonContactRegisterInformation', 'LegalAuthority'
]

/** Parts that are a single object (or null) rather than an array. */
const singleValuedParts = new Set(['Death', 'FalseIdentity', 'CommonContactRegisterInformation'])
/** Parts withheld from restricted-access for persons with address protection (persontjenesten.md §7.5). */
const addressParts = new Set(['ResidentialAddress', 'PresentAddress', 'SharedResidence', 'PostalAddress', 'PreferredContactAddress'])

/** An invented person: its identifiers and its data per information part. */
export interface SyntheticPerson {
  /** Persontjenesten's opaque person id: 64 hex characters. */
  readonly id: string
  /** Synthetic national identity number (valid check digits, birth month + 65). */
  readonly nin: string
  readonly sequenceNumber: number
  readonly protectionLevel: 'Unclassified' | 'Confidential' | 'StrictlyConfidential'
  /** Property name (camelCase of the information part) → value. */
  readonly parts: Readonly<Record<string, unknown>>
}

/** One entry in the change feed. */
export interface SyntheticEvent {
  readonly sequenceNumber: number
  readonly personId: string
  readonly eventType: string
  readonly nin: string
}

interface PersonSpec {
  readonly nin: string
  readonly givenName: string
  readonly middleName?: string
  readonly familyName: string
  readonly birthDate: string
  readonly gender: 'Female' | 'Male'
  readonly status: string
  readonly maritalStatus: string
  readonly protectionLevel: SyntheticPerson['protectionLevel']
  readonly address: { readonly street: string, readonly houseNumber: string, readonly postalCode: string, readonly city: string, readonly municipalityNumber: string, readonly municipalityName: string, readonly countyNumber: string, readonly countyName: string }
  readonly deceasedDate?: string
  readonly relations?: ReadonlyArray<{ readonly nin: string, readonly relatedPersonsRole: string, readonly myRoleForRelatedPerson: string }>
  readonly contact?: { readonly email: string, readonly phoneNumber: string }
}

const specs: readonly PersonSpec[] = [
  {
    nin: '12688510021', givenName: 'Kari', middleName: 'Synnøve', familyName: 'Fjellheim', birthDate: '1985-03-12', gender: 'Female',
    status: 'Resident', maritalStatus: 'Married', protectionLevel: 'Unclassified',
    address: { street: 'Storgata', houseNumber: '12', postalCode: '0155', city: 'OSLO', municipalityNumber: '0301', municipalityName: 'Oslo', countyNumber: '03', countyName: 'Oslo' },
    relations: [{ nin: '05741950083', relatedPersonsRole: 'Child', myRoleForRelatedPerson: 'Mother' }],
    contact: { email: 'kari.fjellheim@example.invalid', phoneNumber: '+4799999001' }
  },
  {
    nin: '04765220365', givenName: 'Ola', familyName: 'Granli', birthDate: '1952-11-04', gender: 'Male',
    status: 'Resident', maritalStatus: 'WidowOrWidower', protectionLevel: 'Unclassified',
    address: { street: 'Kongens gate', houseNumber: '7', postalCode: '7011', city: 'TRONDHEIM', municipalityNumber: '5001', municipalityName: 'Trondheim', countyNumber: '50', countyName: 'Trøndelag' }
  },
  {
    nin: '23727830251', givenName: 'Ingrid', familyName: 'Solvang', birthDate: '1978-07-23', gender: 'Female',
    status: 'Resident', maritalStatus: 'Divorced', protectionLevel: 'StrictlyConfidential',
    address: { street: 'Fjordveien', houseNumber: '3', postalCode: '5003', city: 'BERGEN', municipalityNumber: '4601', municipalityName: 'Bergen', countyNumber: '46', countyName: 'Vestland' },
    contact: { email: 'ingrid.solvang@example.invalid', phoneNumber: '+4799999003' }
  },
  {
    nin: '30664040197', givenName: 'Per', familyName: 'Nygård', birthDate: '1940-01-30', gender: 'Male',
    status: 'Deceased', maritalStatus: 'Married', protectionLevel: 'Unclassified', deceasedDate: '2024-05-14',
    address: { street: 'Lundsgata', houseNumber: '21', postalCode: '9008', city: 'TROMSØ', municipalityNumber: '5501', municipalityName: 'Tromsø', countyNumber: '55', countyName: 'Troms' }
  },
  {
    nin: '05741950083', givenName: 'Sara', familyName: 'Fjellheim', birthDate: '2019-09-05', gender: 'Female',
    status: 'Resident', maritalStatus: 'Unmarried', protectionLevel: 'Unclassified',
    address: { street: 'Storgata', houseNumber: '12', postalCode: '0155', city: 'OSLO', municipalityNumber: '0301', municipalityName: 'Oslo', countyNumber: '03', countyName: 'Oslo' },
    relations: [{ nin: '12688510021', relatedPersonsRole: 'Mother', myRoleForRelatedPerson: 'Child' }]
  }
]

/** The demo's persons; every value is invented. */
export const syntheticPersons: readonly SyntheticPerson[] = specs.map((spec, index) => toSyntheticPerson(spec, index + 1))

/** The change feed: one PersonIsCreated per person, then a few changes; sequence numbers rise by one. */
export const syntheticEvents: readonly SyntheticEvent[] = [
  ...syntheticPersons.map(person => ({ personId: person.id, nin: person.nin, eventType: 'PersonIsCreated' })),
  { ...pick(0), eventType: 'ChangeInResidentialAddress' },
  { ...pick(3), eventType: 'PersonIsDeceased' },
  { ...pick(2), eventType: 'ChangeInAddressProtection' }
].map((event, index) => ({ ...event, sequenceNumber: index + 1 }))

/** A synthetic NIN that is always present (Kari Fjellheim): for curl examples and tests. */
export const demoNin = '12688510021'

/** Finds a person by national identity number. */
export function findPersonByNin (nin: string): SyntheticPerson | undefined {
  return syntheticPersons.find(person => person.nin === nin)
}

/** Finds a person by Persontjenesten id. */
export function findPersonById (id: string): SyntheticPerson | undefined {
  return syntheticPersons.find(person => person.id === id)
}

/**
 * The v3 `Person` JSON with `id`, `sequenceNumber` and only the requested parts; restricted-access drops KRR data
 * and the addresses of persons with address protection.
 */
export function toPersonView (person: SyntheticPerson, parts: readonly string[], access: 'full-access' | 'restricted-access'): Record<string, unknown> {
  const view: Record<string, unknown> = { id: person.id, sequenceNumber: person.sequenceNumber }
  for (const part of parts) {
    const property = part.charAt(0).toLowerCase() + part.slice(1)
    const isWithheld = access === 'restricted-access' &&
      (part === 'CommonContactRegisterInformation' || (addressParts.has(part) && person.protectionLevel !== 'Unclassified'))
    const empty = singleValuedParts.has(part) ? null : []
    view[property] = isWithheld ? empty : (person.parts[property] ?? empty)
  }
  return view
}

function pick (index: number): { personId: string, nin: string } {
  const person = syntheticPersons[index]
  if (person === undefined) throw new TypeError(`no synthetic person ${index}`)
  return { personId: person.id, nin: person.nin }
}

function toSyntheticPerson (spec: PersonSpec, sequenceNumber: number): SyntheticPerson {
  const registeredAt = `${spec.birthDate}T12:00:00+00:00`
  const meta = { registeredAt, isValid: true, source: 'Skatteetaten', reason: null, validFrom: registeredAt, validTo: null }
  const birthDate = `${spec.birthDate}T00:00:00+00:00`
  const confidentiality = spec.protectionLevel
  const parts: Record<string, unknown> = {
    norwegianIdentificationNumber: [{ ...meta, status: 'InUse', identificationNumber: spec.nin, identificationNumberType: 'NationalIdentityNumber' }],
    name: [{ ...meta, givenName: spec.givenName, middleName: spec.middleName ?? null, familyName: spec.familyName, shortName: `${spec.familyName} ${spec.givenName}`.toUpperCase(), originalName: null }],
    birth: [{ ...meta, birthDate, birthYear: spec.birthDate.slice(0, 4), birthPlace: null, birthMunicipalityNumber: spec.address.municipalityNumber, birthMunicipalityName: spec.address.municipalityName, birthCountyNumber: spec.address.countyNumber, birthCountyName: spec.address.countyName, birthCountry: 'NOR' }],
    gender: [{ ...meta, gender: spec.gender }],
    status: [{ ...meta, status: spec.status }],
    maritalStatus: [{ ...meta, status: spec.maritalStatus, statusDate: null, relatedByMaritalStatus: null }],
    citizenship: [{ ...meta, countryCode: 'NOR', aquiredDate: birthDate }],
    addressProtection: confidentiality === 'Unclassified' ? [] : [{ ...meta, protectionLevel: confidentiality }],
    residentialAddress: [{
      ...meta,
      streetAddress: {
        municipalityNumber: spec.address.municipalityNumber,
        municipalityName: spec.address.municipalityName,
        countyNumber: spec.address.countyNumber,
        countyName: spec.address.countyName,
        addressName: spec.address.street,
        addressNumber: { houseNumber: spec.address.houseNumber, houseLetter: null },
        addressCode: '1001',
        city: { cityName: spec.address.city, postalCode: spec.address.postalCode }
      },
      addressConfidentiality: confidentiality,
      moveDate: registeredAt
    }],
    familyRelation: (spec.relations ?? []).map(relation => ({ ...meta, relatedPerson: relation.nin, relatedPersonsRole: relation.relatedPersonsRole, myRoleForRelatedPerson: relation.myRoleForRelatedPerson })),
    death: spec.deceasedDate === undefined ? null : { ...meta, deceasedDate: `${spec.deceasedDate}T00:00:00+00:00` },
    commonContactRegisterInformation: spec.contact === undefined
      ? null
      : { reservation: 'No', status: 'Active', notificationStatus: 'CanBeNotified', contactInformation: { email: spec.contact.email, phoneNumber: spec.contact.phoneNumber }, language: 'nb' }
  }
  const id = createHash('sha256').update(`helseid-broker synthetic person ${spec.nin}`).digest('hex')
  return { id, nin: spec.nin, sequenceNumber, protectionLevel: spec.protectionLevel, parts }
}
