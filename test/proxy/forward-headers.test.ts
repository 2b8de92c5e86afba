import t from 'tap'
import { toCallerHeaders, toUpstreamHeaders } from '../../src/proxy/forward-headers.ts'

t.test('drops credentials, hop-by-hop and Connection-listed headers on the way up', async t => {
  const out = toUpstreamHeaders({
    Authorization: 'Bearer caller-secret',
    dpop: 'caller-proof',
    cookie: 'session=1',
    host: '127.0.0.1:8480',
    connection: 'keep-alive, X-Remove-Me',
    'x-remove-me': 'gone',
    'keep-alive': 'timeout=5',
    te: 'trailers',
    'transfer-encoding': 'chunked',
    'proxy-authorization': 'Basic x',
    upgrade: 'websocket',
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
    'x-correlation-id': 'abc'
  })
  t.same(out, { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', 'x-correlation-id': 'abc' })
})

t.test('keeps end-to-end response headers and drops hop-by-hop ones', async t => {
  const out = toCallerHeaders({
    'content-type': 'application/json',
    'content-length': '12',
    connection: 'close, x-internal',
    'x-internal': 'secret-topology',
    'transfer-encoding': 'chunked',
    'set-cookie': ['a=1', 'b=2']
  })
  t.same(out, { 'content-type': 'application/json', 'content-length': '12', 'set-cookie': ['a=1', 'b=2'] })
})
