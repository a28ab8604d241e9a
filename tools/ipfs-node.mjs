#!/usr/bin/env node
// A real IPFS node for tests and development: Helia (in-memory blockstore, no libp2p, fully
// offline) behind a small HTTP server that speaks the subset of Kubo's RPC API FLB uses:
//
//   POST /api/v0/add?cid-version=&raw-leaves=&chunker=size-N&pin=   multipart file -> {"Name","Hash","Size"}
//   POST /api/v0/cat?arg=CID[&offset=&length=]                      the file's bytes
//   POST /api/v0/pin/add?arg=CID                                    {"Pins":[CID]}
//   POST /api/v0/block/stat?arg=CID                                 {"Key","Size"}
//   POST /api/v0/dag/import[?pin-roots=&stats=]                     multipart CARv1 -> {"Root":{...}} lines
//   POST /api/v0/dag/export?arg=CID                                 CARv1 bytes
//   POST /api/v0/version, /api/v0/id                                health
//
// Errors are Kubo's: HTTP 500 with {"Message","Code","Type":"error"}.
//
// Usage: node tools/ipfs-node.mjs [--host 127.0.0.1] [--port 0] [--exit-with-stdin]
// Prints one JSON line on stdout once listening:
//   {"ready":true,"api":"http://127.0.0.1:PORT","host":"127.0.0.1","port":PORT,"pid":PID}

import http from 'node:http'
import { parseArgs } from 'node:util'

// NOTE: Helia 7 calls Promise.withResolvers, which Node 20 lacks (Node 22 has it).
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers () {
    let resolve, reject
    const promise = new this((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}

const { createHeliaLight } = await import('helia')
const { unixfs } = await import('@helia/unixfs')
const { MemoryBlockstore } = await import('blockstore-core')
const { MemoryDatastore } = await import('datastore-core')
const { fixedSize } = await import('ipfs-unixfs-importer/chunker')
const { balanced } = await import('ipfs-unixfs-importer/layout')
const { CID } = await import('multiformats/cid')
const { sha256 } = await import('multiformats/hashes/sha2')
const dagPB = await import('@ipld/dag-pb')
const dagCbor = await import('@ipld/dag-cbor')

const KUBO_MAX_LINKS = 174 // Kubo's balanced layout; Helia's own default is 1024
const KUBO_CHUNK_SIZE = 262144 // Kubo's size-262144; Helia's own default is 1 MiB
const MAX_BLOCK = 4 * 1024 * 1024

class ApiError extends Error {
  constructor (message, status = 500) {
    super(message)
    this.status = status
  }
}

// --- small helpers -------------------------------------------------------------------------------

function encodeVarint (n) {
  const out = []
  while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128) }
  out.push(n)
  return Uint8Array.from(out)
}

function concat (chunks) {
  return Buffer.concat(chunks.map(c => Buffer.from(c.buffer, c.byteOffset, c.byteLength)))
}

function parseCid (text) {
  if (text == null || text === '') throw new ApiError('argument "ipfs-path" is required')
  const bare = text.replace(/^\/ipfs\//, '')
  if (bare.includes('/')) throw new ApiError(`paths inside a DAG are not supported: ${text}`)
  try {
    return CID.parse(bare)
  } catch (err) {
    throw new ApiError(`invalid path "${text}": ${err.message}`)
  }
}

function boolParam (params, name, fallback) {
  const value = params.get(name)
  if (value == null || value === '') return fallback
  return value === 'true' || value === '1'
}

async function getBlock (helia, cid) {
  if (!(await helia.blockstore.has(cid))) {
    throw new ApiError(`block was not found locally (offline): ipld: could not find ${cid}`)
  }
  const chunks = []
  for await (const chunk of helia.blockstore.get(cid, { offline: true })) chunks.push(chunk)
  return concat(chunks)
}

// Kubo's "Size": the root block plus the Tsize of each of its links (no DAG walk needed).
async function cumulativeSize (helia, cid) {
  const block = await getBlock(helia, cid)
  if (cid.code !== dagPB.code) return block.length
  return dagPB.decode(block).Links.reduce((sum, link) => sum + (link.Tsize ?? 0), block.length)
}

// Reads exact byte counts and varints from an async iterable of chunks.
class ByteReader {
  constructor (source) {
    this.iterator = source[Symbol.asyncIterator]()
    this.buffer = Buffer.alloc(0)
    this.done = false
  }

  async fill (n) {
    while (this.buffer.length < n && !this.done) {
      const { value, done } = await this.iterator.next()
      if (done) { this.done = true; break }
      this.buffer = this.buffer.length === 0 ? Buffer.from(value) : Buffer.concat([this.buffer, value])
    }
    return this.buffer.length >= n
  }

  async exact (n) {
    if (!(await this.fill(n))) throw new ApiError(`CAR is truncated: wanted ${n} bytes, got ${this.buffer.length}`)
    const out = this.buffer.subarray(0, n)
    this.buffer = this.buffer.subarray(n)
    return out
  }

  async varint () {
    let result = 0; let factor = 1
    for (let i = 0; i < 9; i++) {
      if (!(await this.fill(1))) {
        if (i === 0) return null
        throw new ApiError('CAR is truncated inside a length prefix')
      }
      const byte = this.buffer[0]
      this.buffer = this.buffer.subarray(1)
      result += (byte & 0x7f) * factor
      if ((byte & 0x80) === 0) return result
      factor *= 128
    }
    throw new ApiError('CAR length prefix is too long')
  }
}

// The first file part of a multipart/form-data request, streamed: { filename, content }.
async function openMultipart (req) {
  const match = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(req.headers['content-type'] ?? '')
  if (match == null) throw new ApiError('request is not multipart/form-data', 400)
  const boundary = match[1] ?? match[2]
  const reader = new ByteReader(req)
  // headers of the first part end at the first blank line
  let headerEnd = -1
  while (headerEnd < 0) {
    if (!(await reader.fill(reader.buffer.length + 1))) throw new ApiError('multipart body has no file part', 400)
    headerEnd = reader.buffer.indexOf('\r\n\r\n')
    if (reader.buffer.length > 65536 && headerEnd < 0) throw new ApiError('multipart part headers too long', 400)
  }
  const head = reader.buffer.subarray(0, headerEnd).toString('utf8')
  if (!head.startsWith(`--${boundary}`)) throw new ApiError('multipart body does not start with its boundary', 400)
  const nameMatch = /filename="([^"]*)"/i.exec(head)
  reader.buffer = reader.buffer.subarray(headerEnd + 4)
  const delimiter = Buffer.from(`\r\n--${boundary}`)

  async function * content () {
    while (true) {
      const at = reader.buffer.indexOf(delimiter)
      if (at >= 0) {
        if (at > 0) yield reader.buffer.subarray(0, at)
        reader.buffer = Buffer.alloc(0)
        for await (const _ of reader.iterator) { /* drain the rest of the request */ }
        return
      }
      // NOTE: keep a tail that could be the start of the delimiter split across two reads.
      const safe = reader.buffer.length - (delimiter.length - 1)
      if (safe > 0) {
        yield reader.buffer.subarray(0, safe)
        reader.buffer = reader.buffer.subarray(safe)
      }
      if (reader.done) throw new ApiError('multipart body ended before its closing boundary', 400)
      await reader.fill(reader.buffer.length + 1)
    }
  }

  return { filename: nameMatch?.[1] ?? '', content: content() }
}

// --- the API -------------------------------------------------------------------------------------

function makeHandlers (helia, fs) {
  async function pin (cid) {
    try {
      for await (const _ of helia.pins.add(cid, { offline: true })) { /* walks the whole DAG */ }
    } catch (err) {
      if (err.name !== 'AlreadyPinnedError') throw err
    }
  }

  return {
    async add (params, req, res) {
      const cidVersion = Number(params.get('cid-version') ?? '0')
      if (cidVersion !== 0 && cidVersion !== 1) throw new ApiError(`unknown CID version ${cidVersion}`)
      // Kubo: raw leaves are the default with CIDv1 only
      const rawLeaves = boolParam(params, 'raw-leaves', cidVersion === 1)
      const chunker = params.get('chunker') ?? `size-${KUBO_CHUNK_SIZE}`
      const sizeMatch = /^size-(\d+)$/.exec(chunker)
      if (sizeMatch == null) throw new ApiError(`chunker "${chunker}" is not supported here (size-N only)`)
      const chunkSize = Number(sizeMatch[1])
      if (chunkSize < 1 || chunkSize > 1048576) throw new ApiError(`chunker size ${chunkSize} out of range`)
      if ((params.get('hash') ?? 'sha2-256') !== 'sha2-256') throw new ApiError('only sha2-256 is supported')
      if (boolParam(params, 'trickle', false)) throw new ApiError('the trickle layout is not supported here')
      if (boolParam(params, 'wrap-with-directory', false)) throw new ApiError('wrap-with-directory is not supported here')
      if (boolParam(params, 'only-hash', false)) throw new ApiError('only-hash is not supported here')
      const { filename, content } = await openMultipart(req)
      const cid = await fs.addByteStream(content, {
        cidVersion,
        rawLeaves,
        leafType: 'file',
        reduceSingleLeafToSelf: true,
        chunker: fixedSize({ chunkSize }),
        layout: balanced({ maxChildrenPerNode: KUBO_MAX_LINKS })
      })
      if (boolParam(params, 'pin', true)) await pin(cid)
      sendJsonLines(res, [{ Name: filename || cid.toString(), Hash: cid.toString(), Size: String(await cumulativeSize(helia, cid)) }])
    },

    async cat (params, req, res) {
      const cid = parseCid(params.get('arg'))
      await getBlock(helia, cid) // a clean error before any byte is sent
      const options = { offline: true }
      if (params.get('offset') != null) options.offset = Number(params.get('offset'))
      if (params.get('length') != null) options.length = Number(params.get('length'))
      res.writeHead(200, { 'Content-Type': 'text/plain', 'X-Stream-Output': '1' })
      for await (const chunk of fs.cat(cid, options)) {
        if (!res.write(chunk)) await new Promise(resolve => res.once('drain', resolve))
      }
      res.end()
    },

    async 'pin/add' (params, req, res) {
      const cid = parseCid(params.get('arg'))
      await getBlock(helia, cid)
      await pin(cid)
      sendJsonLines(res, [{ Pins: [cid.toString()] }])
    },

    async 'pin/rm' (params, req, res) {
      const cid = parseCid(params.get('arg'))
      for await (const _ of helia.pins.rm(cid)) { /* unpin */ }
      sendJsonLines(res, [{ Pins: [cid.toString()] }])
    },

    async 'block/stat' (params, req, res) {
      const cid = parseCid(params.get('arg'))
      const block = await getBlock(helia, cid)
      sendJsonLines(res, [{ Key: cid.toString(), Size: block.length }])
    },

    async 'dag/import' (params, req, res) {
      const { content } = await openMultipart(req)
      const reader = new ByteReader(content)
      const headerLength = await reader.varint()
      if (headerLength == null || headerLength === 0 || headerLength > 1048576) throw new ApiError('not a CAR file')
      const header = dagCbor.decode(await reader.exact(headerLength))
      if (header?.version !== 1 || !Array.isArray(header.roots)) throw new ApiError('only CARv1 is supported')
      let blocks = 0; let bytes = 0
      while (true) {
        const length = await reader.varint()
        if (length == null) break
        if (length > MAX_BLOCK + 128) throw new ApiError(`CAR block of ${length} bytes is too large`)
        const section = await reader.exact(length)
        const [cid, rest] = CID.decodeFirst(section)
        if (cid.multihash.code !== sha256.code) throw new ApiError(`unsupported hash in block ${cid}`)
        const digest = await sha256.digest(rest)
        if (Buffer.compare(Buffer.from(digest.digest), Buffer.from(cid.multihash.digest)) !== 0) {
          throw new ApiError(`block ${cid} does not hash to its CID`)
        }
        await helia.blockstore.put(cid, Uint8Array.from(rest))
        blocks += 1; bytes += rest.length
      }
      const lines = []
      for (const root of header.roots) {
        let message = ''
        if (boolParam(params, 'pin-roots', true)) {
          try { await pin(root) } catch (err) { message = `pinning root ${root} failed: ${err.message}` }
        }
        lines.push({ Root: { Cid: { '/': root.toString() }, PinErrorMsg: message } })
      }
      if (boolParam(params, 'stats', false)) lines.push({ Stats: { BlockCount: blocks, BlockBytesCount: bytes } })
      sendJsonLines(res, lines)
    },

    async 'dag/export' (params, req, res) {
      const root = parseCid(params.get('arg'))
      await getBlock(helia, root)
      res.writeHead(200, { 'Content-Type': 'application/vnd.ipld.car', 'X-Stream-Output': '1' })
      const write = async (bytes) => {
        if (!res.write(bytes)) await new Promise(resolve => res.once('drain', resolve))
      }
      const header = dagCbor.encode({ roots: [root], version: 1 })
      await write(encodeVarint(header.length)); await write(header)
      // NOTE: depth-first, parents before children, each block once: `ipfs dag export`'s order.
      const seen = new Set()
      const visit = async (cid) => {
        const key = cid.toString()
        if (seen.has(key)) return
        seen.add(key)
        const block = await getBlock(helia, cid)
        await write(encodeVarint(cid.bytes.length + block.length)); await write(cid.bytes); await write(block)
        if (cid.code === dagPB.code) {
          for (const link of dagPB.decode(block).Links) await visit(link.Hash)
        }
      }
      await visit(root)
      res.end()
    },

    async version (params, req, res) {
      sendJsonLines(res, [{ Version: '0.0.0-helia', Commit: '', Repo: 'memory', System: `${process.arch}/${process.platform}`, Golang: `node-${process.version}` }])
    },

    async id (params, req, res) {
      sendJsonLines(res, [{ ID: 'flb-helia-local', PublicKey: '', Addresses: [], AgentVersion: 'helia/flb-ipfs-node', Protocols: [] }])
    }
  }
}

function sendJsonLines (res, objects) {
  res.writeHead(200, { 'Content-Type': 'application/json' })
  res.end(objects.map(o => JSON.stringify(o)).join('\n') + '\n')
}

function sendError (res, status, message) {
  if (res.headersSent) { res.destroy(new Error(message)); return }
  res.writeHead(status, { 'Content-Type': 'application/json' })
  res.end(JSON.stringify({ Message: message, Code: 0, Type: 'error' }) + '\n')
}

// --- main ----------------------------------------------------------------------------------------

const { values: args } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    'exit-with-stdin': { type: 'boolean', default: false }
  }
})

const helia = createHeliaLight({ blockstore: new MemoryBlockstore(), datastore: new MemoryDatastore() })
await helia.start()
const fs = unixfs(helia)
const handlers = makeHandlers(helia, fs)

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost')
  const command = url.pathname.replace(/^\/api\/v0\//, '')
  const handler = url.pathname.startsWith('/api/v0/') ? handlers[command] : undefined
  if (handler == null) {
    res.writeHead(404, { 'Content-Type': 'text/plain' })
    res.end('404 page not found')
    return
  }
  if (req.method !== 'POST') { sendError(res, 405, `${req.method} not allowed, use POST`); return }
  try {
    await handler(url.searchParams, req, res)
  } catch (err) {
    sendError(res, err.status ?? 500, err.message ?? String(err))
  }
})
server.requestTimeout = 0 // NOTE: large uploads may take longer than Node's 5-minute default

async function shutdown () {
  server.close()
  await helia.stop()
  process.exit(0)
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)
if (args['exit-with-stdin']) {
  process.stdin.on('end', shutdown)
  process.stdin.on('close', shutdown)
  process.stdin.resume()
}

server.listen(Number(args.port), args.host, () => {
  const { address, port } = server.address()
  process.stdout.write(JSON.stringify({ ready: true, api: `http://${address}:${port}`, host: address, port, pid: process.pid }) + '\n')
})
