// Runtime checks for what peers put in the room document (types: ./types.gen).
// Any peer can write anything (the document is a CRDT: an editor's client can put any value
// under any key), so the page validates before it renders, indexes or trusts an entry.
import { COORD_LIMIT, MAX_LABEL, MAX_POINTS, MAX_TEXT, MAX_WIDGET_TEXT, type Message, type Stroke, type Widget } from './types.gen'

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

/**
 * A text or a button (canvas.schema.Widget) as the server's readers see it: fields the model
 * defaults (size, color, author, kind, anyone, t) filled in, anything malformed -> null, so a
 * peer's bad entry is skipped, never drawn.
 */
export function parseWidget(v: unknown, key?: string): Widget | null {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return null
  const w = { size: 24, color: '#1e1e1e', author: 'anonymous', kind: 'human', anyone: false, t: 0, ...v } as Widget
  if (typeof w.id !== 'string' || !ID_RE.test(w.id) || (key !== undefined && key !== w.id)) return null
  if (w.type !== 'text' && w.type !== 'button') return null
  if (!inCanvas(w.x) || !inCanvas(w.y)) return null
  if (typeof w.text !== 'string' || w.text.length > (w.type === 'button' ? MAX_LABEL : MAX_WIDGET_TEXT)) return null
  if (w.type === 'button' && !w.text.trim()) return null
  if (typeof w.size !== 'number' || !(w.size > 0 && w.size <= 1000)) return null
  if (typeof w.color !== 'string' || !COLOR_RE.test(w.color)) return null
  if (typeof w.author !== 'string' || w.author.length > MAX_NAME) return null
  if (w.kind !== 'human' && w.kind !== 'agent') return null
  if (typeof w.anyone !== 'boolean' || typeof w.t !== 'number' || !Number.isFinite(w.t)) return null
  return isRunId(w.run) && isRunId(w.behaviour) ? w : null
}

/** A finite coordinate within the canvas (negated range: NaN fails too). */
const inCanvas = (c: unknown) => typeof c === 'number' && c >= -COORD_LIMIT && c <= COORD_LIMIT

export function isMessage(v: unknown): v is Message {
  const m = v as Message
  if (!m || typeof m !== 'object') return false
  if (typeof m.text !== 'string' || m.text.length > MAX_TEXT) return false
  if (typeof m.author !== 'string' || m.author.length > MAX_NAME) return false
  return isRunId(m.run) && isRunId(m.behaviour)
}

/** An optional run or behaviour id: absent, null, or an id (it ends up in URLs and in data attributes). */
const isRunId = (r: unknown) => r == null || (typeof r === 'string' && ID_RE.test(r))
