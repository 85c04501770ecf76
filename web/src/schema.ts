// Runtime checks for what peers put in the room document (types: ./types.gen).
// Any peer can write anything, so the page validates before it renders or trusts an entry.
import { MAX_POINTS, type Message, type Stroke } from './types.gen'

const ID_RE = /^[A-Za-z0-9_.:-]{1,80}$/
const COLOR_RE = /^#[0-9a-fA-F]{6}$/

export function newId(prefix = 'h'): string {
  const r = Math.random().toString(36).slice(2, 10)
  return `${prefix}-${Date.now().toString(36)}-${r}`
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
  return true
}

export function isMessage(v: unknown): v is Message {
  const m = v as Message
  return !!m && typeof m === 'object' && typeof m.text === 'string' && typeof m.author === 'string'
}
