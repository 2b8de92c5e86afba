import t from 'tap'
import { BrokerError, IdpRejectedError } from '../../src/errors.ts'
import { parseTokenResponse } from '../../src/helseid/token-response.ts'

t.test('a DPoP token response yields the token, lifetime and scopes', async t => {
  const outcome = parseTokenResponse(200, JSON.stringify({ access_token: 'abc', token_type: 'DPoP', expires_in: 60, scope: 'a b' }))
  t.same(outcome, { kind: 'token', accessToken: 'abc', expiresInSeconds: 60, scopes: ['a', 'b'] })
})

t.test('use_dpop_nonce asks for the handshake', async t => {
  t.same(parseTokenResponse(400, '{"error":"use_dpop_nonce"}'), { kind: 'nonce-required' })
})

t.test('refusals and unusable answers get codes, and never copy the body into the message', async t => {
  const cases: Array<[number, string, string, string | undefined]> = [
    [401, '{"error":"invalid_client","error_description":"secret-ish detail 12345678901"}', 'BROKER_IDP_REJECTED', 'invalid_client'],
    [400, '{"error":"invalid_scope"}', 'BROKER_IDP_REJECTED', 'invalid_scope'],
    [400, '<html>proxy error 12345678901</html>', 'BROKER_IDP_BAD_RESPONSE', undefined],
    [400, '{"error":"bad\\nerror"}', 'BROKER_IDP_BAD_RESPONSE', undefined],
    [503, 'down', 'BROKER_IDP_UNREACHABLE', undefined],
    [200, '{"access_token":"x","token_type":"Bearer","expires_in":60}', 'BROKER_IDP_BAD_RESPONSE', undefined],
    [200, '{"access_token":"x","token_type":"DPoP","expires_in":0}', 'BROKER_IDP_BAD_RESPONSE', undefined],
    [200, '{"token_type":"DPoP","expires_in":60}', 'BROKER_IDP_BAD_RESPONSE', undefined],
    [200, 'not json', 'BROKER_IDP_BAD_RESPONSE', undefined]
  ]
  for (const [status, body, code, oauthError] of cases) {
    const outcome = parseTokenResponse(status, body)
    t.equal(outcome.kind, 'rejected', `${status} ${body}`)
    if (outcome.kind !== 'rejected') continue
    t.ok(outcome.error instanceof BrokerError)
    t.equal(outcome.error.code, code)
    t.equal(outcome.error instanceof IdpRejectedError ? outcome.error.oauthError : undefined, oauthError)
    t.notMatch(outcome.error.message, /12345678901|secret-ish|proxy error/)
  }
})
