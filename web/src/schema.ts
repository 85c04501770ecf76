// Runtime checks for what peers put in the room document (types: ./types.gen).
// Any peer can write anything (the document is a CRDT: an editor's client can put any value
// under any key), so the page validates before it renders, indexes or trusts an entry.
import { COORD_LIMIT, MAX_POINTS, MAX_TEXT, type Message, type Stroke } from './types.gen'

const ID_RE = /^[A-Za-z0-9_.:-]{1,80}$/
const COLOR_RE = /^#[0-9a-fA-F]{6}$/
const MAX_NAME = 80

export function newId(prefix = 'h'): string {
  const r = Math.random().toString(36).slice(2, 10)
  return `${prefix}-${Date.now().toString(36)}-${r}`
}

/**
 * True if every triplet of the flat `[x, y, p, ...]` array is finite numbers with x and y within
 * ±COORD_LIMIT and p in 0..1. One point at 1e300 once made the grid index walk ~1e600 cells.
 */
export function pointsInBounds(points: unknown[]): boolean {
  for (let i = 0; i < points.length; i += 3) {
    const x = points[i], y = points[i + 1], p = points[i + 2]
    if (typeof x !== 'number' || typeof y !== 'number' || typeof p !== 'number') return false
    // Written as negated ranges so that NaN fails too.
    if (!(x >= -COORD_LIMIT && x <= COORD_LIMIT && y >= -COORD_LIMIT && y <= COORD_LIMIT)) return false
    if (!(p >= 0 && p <= 1)) return false
  }
  return true
}

export function isStroke(v: unknown, key?: string): v is Stroke {
  const s = v as Stroke
  if (!s || typeof s !== 'object') return false
  if (typeof s.id !== 'string' || !ID_RE.test(s.id) || (key !== undefined && key !== s.id)) return false
  if (!Array.isArray(s.points) || s.points.length < 3 || s.points.length % 3 !== 0) return false
  if (s.points.length > MAX_POINTS * 3) return false
  if (typeof s.color !== 'string' || !COLOR_RE.test(s.color)) return false
  if (typeof s.width !== 'number' || !(s.width > 0 && s.width <= 200)) return false
  if (s.kind !== 'human' && s.kind !== 'agent') return false
  if (!isRunId(s.run) || !isRunId(s.behaviour)) return false
  return pointsInBounds(s.points)
}

export function isMessage(v: unknown): v is Message {
  const m = v as Message
  if (!m || typeof m !== 'object') return false
  if (typeof m.text !== 'string' || m.text.length > MAX_TEXT) return false
  if (typeof m.author !== 'string' || m.author.length > MAX_NAME) return false
  return isRunId(m.run) && isRunId(m.behaviour)
}

/** An optional run or behaviour id: absent, null, or an id (it ends up in URLs and in data attributes). */
const isRunId = (r: unknown) => r == null || (typeof r === 'string' && ID_RE.test(r))
