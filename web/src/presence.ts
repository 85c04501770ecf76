// Other peers' cursors (with names, agent badge), live strokes, and avatars.
import type { Awareness } from 'y-protocols/awareness'
import type { Camera } from './camera'
import type { LiveInk } from './renderer'
import { initials } from './identity'
import { ROBOT } from './icons'
import { pointsInBounds } from './schema'
import { MAX_POINTS } from './types.gen'

interface PeerState {
  user?: { name?: string; color?: string; kind?: string }
  cursor?: { x: number; y: number } | null
  drawing?: { points: number[]; color: string; width: number } | null
}

const COLOR_RE = /^#[0-9a-fA-F]{6}$/
/** Kinds the server vouches for (it rewrites any other connection's claim to them, see
 *  SCHEMA.md "Presence"): the hosted agent, and MCP clients' sessions (labelled "MCP"). */
const agentKind = (st: PeerState) => st.user?.kind === 'agent' || st.user?.kind === 'mcp'
const mcpTag = (st: PeerState) => st.user?.kind === 'mcp' ? '<span class="via" title="an MCP client">MCP</span>' : ''
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
const cursorSvg = (c: string) =>
  `<svg width="18" height="20" viewBox="0 0 18 20"><path d="M1.5 1.5l13 7.2-5.6 1.5-2.6 5.8z" fill="${c}" stroke="#fff" stroke-width="1.5" stroke-linejoin="round"/></svg>`

export function mountPresence(opts: {
  awareness: Awareness
  camera: Camera
  layer: HTMLElement
  avatars: HTMLElement
  requestRender: () => void
}) {
  const { awareness, camera, layer, avatars } = opts
  const els = new Map<number, HTMLElement>()

  const peers = () => {
    const out: [number, PeerState][] = []
    for (const [id, st] of awareness.getStates()) if (id !== awareness.clientID && st && (st as PeerState).user) out.push([id, st as PeerState])
    return out
  }

  const place = () => {
    const seen = new Set<number>()
    for (const [id, st] of peers()) {
      if (!st.cursor || !Number.isFinite(st.cursor.x) || !Number.isFinite(st.cursor.y)) continue
      seen.add(id)
      let el = els.get(id)
      const name = String(st.user?.name ?? 'Someone').slice(0, 40)
      const color = COLOR_RE.test(st.user?.color ?? '') ? st.user!.color! : '#868e96'
      const agent = agentKind(st)
      const key = `${name}|${color}|${st.user?.kind}`
      if (!el) {
        el = document.createElement('div')
        el.className = 'cursor'
        el.dataset.testid = 'remote-cursor'
        layer.append(el)
        els.set(id, el)
      }
      if (el.dataset.key !== key) {
        el.dataset.key = key
        el.dataset.name = name
        el.dataset.kind = agent ? 'agent' : 'human'
        if (st.user?.kind === 'mcp') el.dataset.via = 'mcp'; else delete el.dataset.via
        el.classList.toggle('agent', agent)
        el.innerHTML = `${cursorSvg(color)}<span class="tag" style="background:${color}">${agent ? `<span class="bot" title="AI agent">${ROBOT}</span>` : ''}${esc(name)}${mcpTag(st)}</span>`
      }
      const [sx, sy] = camera.toScreen(st.cursor.x, st.cursor.y)
      el.style.transform = `translate(${sx}px, ${sy}px)`
    }
    for (const [id, el] of els) if (!seen.has(id)) { el.remove(); els.delete(id) }
  }

  const renderAvatars = () => {
    const me = awareness.getLocalState() as PeerState | null
    const list: PeerState[] = [...(me?.user ? [me] : []), ...peers().map(([, s]) => s)]
    const shown = list.slice(0, 6)
    avatars.innerHTML = shown.map((s, i) => {
      const name = String(s.user?.name ?? '?')
      const color = COLOR_RE.test(s.user?.color ?? '') ? s.user!.color! : '#868e96'
      const agent = agentKind(s)
      const label = agent ? ROBOT : esc(initials(name))
      return `<span class="avatar${agent ? ' agent' : ''}${i === 0 && s === me ? ' me' : ''}" data-testid="avatar" data-kind="${agent ? 'agent' : 'human'}" title="${esc(name)}${i === 0 && s === me ? ' (you)' : ''}"${s.user?.kind === 'mcp' ? ' data-via="mcp"' : ''} style="--c:${color}">${label}</span>`
    }).join('') + (list.length > shown.length ? `<span class="avatar more">+${list.length - shown.length}</span>` : '')
  }

  awareness.on('change', () => { place(); renderAvatars(); opts.requestRender() })
  camera.on('change', place)
  place(); renderAvatars()

  /** Others' in-progress strokes, for the renderer's overlay pass. */
  return {
    liveInks(): LiveInk[] {
      const out: LiveInk[] = []
      for (const [, st] of peers()) {
        const d = st.drawing
        // Same bounds as committed strokes (schema.isStroke): awareness is just as writable.
        if (d && Array.isArray(d.points) && d.points.length >= 3 && d.points.length <= MAX_POINTS * 3 &&
            COLOR_RE.test(d.color) && d.width > 0 && d.width <= 200 && pointsInBounds(d.points)) {
          out.push({ points: d.points, color: d.color, width: d.width })
        }
      }
      return out
    },
  }
}
