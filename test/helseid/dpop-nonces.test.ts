// The DPoP nonce store: one nonce per origin, the newest kept, and a bound on how many origins it remembers.

import t from 'tap'
import { createNonceStore } from '../../src/helseid/dpop-nonces.ts'

t.test('one nonce per origin, replaced by the newest; past the bound the origin stored first is forgotten', async t => {
  const nonces = createNonceStore(2)
  nonces.set('https://a.example', 'a1')
  nonces.set('https://b.example', 'b1')
  nonces.set('https://a.example', 'a2')

  t.equal(nonces.get('https://a.example'), 'a2', 'a new nonce replaces the old one')
  t.equal(nonces.get('https://b.example'), 'b1', 'replacing a known origin forgets no other')

  nonces.set('https://c.example', 'c1')

  t.equal(nonces.get('https://a.example'), undefined, 'the origin stored first goes when a third arrives')
  t.equal(nonces.get('https://b.example'), 'b1')
  t.equal(nonces.get('https://c.example'), 'c1')
})
