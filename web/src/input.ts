// Pointer, touch, pen, wheel and keyboard input on the stage: draw, erase, pan, zoom.
import type * as Y from 'yjs'
import type { Awareness } from 'y-protocols/awareness'
import type { Camera } from './camera'
import type { Renderer, LiveInk } from './renderer'
import type { StrokeStore } from './store'
import type { ToolState } from './tools'
import { commitStroke, eraseStrokes } from './ops'
import { hitStroke } from './geometry'

export interface InputDeps {
  stage: HTMLElement
  doc: Y.Doc
  awareness: Awareness
  camera: Camera
  renderer: Renderer
  store: StrokeStore
  tools: ToolState
  author: () => string
  onStrokeDone: () => void
}

type Mode = 'idle' | 'draw' | 'erase' | 'pan' | 'gesture'

export function attachInput(d: InputDeps) {
  const { stage, camera, renderer, tools, awareness } = d
  const pointers = new Map<number, { x: number; y: number; type: string }>()
  let mode: Mode = 'idle'
  let active = -1
  let live: LiveInk | null = null
  let space = false
  let gesture: { dist: number; cx: number; cy: number } | null = null

  // Awareness updates are coalesced to at most one every 40 ms.
  let awDirty = false, awTimer = 0, cursor: { x: number; y: number } | null = null
  const flushAwareness = () => {
    awTimer = 0
    if (!awDirty) return
    awDirty = false
    const cur = awareness.getLocalState() || {}
    awareness.setLocalState({
      ...cur,
      cursor,
      drawing: live ? { points: live.points.slice(), color: live.color, width: live.width } : null,
    })
  }
  const markAwareness = (now = false) => {
    awDirty = true
    if (now) { if (awTimer) clearTimeout(awTimer); flushAwareness(); return }
    if (!awTimer) awTimer = window.setTimeout(flushAwareness, 40)
  }

  const local = (e: PointerEvent | WheelEvent | MouseEvent) => {
    const r = stage.getBoundingClientRect()
    return [e.clientX - r.left, e.clientY - r.top] as [number, number]
  }
  const pressure = (e: PointerEvent) =>
    e.pointerType === 'pen' || e.pointerType === 'touch' ? (e.pressure || 0.5) : 0.5

  renderer.overlays = (() => {
    const prev = renderer.overlays
    return () => (live ? [...prev(), live] : prev())
  })()

  const eraseAt = (sx: number, sy: number) => {
    const [wx, wy] = camera.toWorld(sx, sy)
    const r = 6 / camera.z
    const hits: string[] = []
    for (const e of d.store.visible({ minX: wx - r, minY: wy - r, maxX: wx + r, maxY: wy + r })) {
      if (hitStroke(e.stroke.points, e.stroke.width, wx, wy, r)) hits.push(e.stroke.id)
    }
    if (hits.length) eraseStrokes(d.doc, hits)
  }

  const updateGesture = () => {
    const ps = [...pointers.values()].slice(0, 2)
    if (ps.length < 2) return
    const a = ps[0]!, b = ps[1]!
    const cx = (a.x + b.x) / 2, cy = (a.y + b.y) / 2
    const dist = Math.hypot(a.x - b.x, a.y - b.y)
    if (gesture) {
      camera.panBy(cx - gesture.cx, cy - gesture.cy)
      if (gesture.dist > 0 && dist > 0) camera.zoomAt(cx, cy, dist / gesture.dist)
    }
    gesture = { dist, cx, cy }
  }

  const cancelLive = () => { live = null; markAwareness(true); renderer.request() }

  stage.addEventListener('pointerdown', (e) => {
    if ((e.target as HTMLElement).closest('.ui')) return
    const [x, y] = local(e)
    pointers.set(e.pointerId, { x, y, type: e.pointerType })
    stage.setPointerCapture(e.pointerId)
    const touches = [...pointers.values()].filter((p) => p.type === 'touch').length
    if (e.pointerType === 'touch' && touches >= 2) {
      if (mode === 'draw') cancelLive()
      mode = 'gesture'; gesture = null; updateGesture(); return
    }
    if (mode !== 'idle') return
    active = e.pointerId
    if (e.button === 1 || space || tools.tool === 'pan' || (e.button === 2)) {
      mode = 'pan'; stage.classList.add('panning'); e.preventDefault(); return
    }
    if (e.button !== 0 || tools.readOnly) { mode = 'pan'; return }
    if (tools.tool === 'erase') { mode = 'erase'; eraseAt(x, y); return }
    mode = 'draw'
    const [wx, wy] = camera.toWorld(x, y)
    live = { points: [wx, wy, pressure(e)], color: tools.color, width: tools.width }
    markAwareness()
    renderer.request()
  })

  stage.addEventListener('pointermove', (e) => {
    const [x, y] = local(e)
    const prev = pointers.get(e.pointerId)
    if (e.pointerType !== 'touch' || mode === 'idle') {
      const [wx, wy] = camera.toWorld(x, y)
      cursor = { x: Math.round(wx * 10) / 10, y: Math.round(wy * 10) / 10 }
      markAwareness()
    }
    if (!prev) return
    pointers.set(e.pointerId, { x, y, type: e.pointerType })
    if (mode === 'gesture') { updateGesture(); return }
    if (e.pointerId !== active) return
    if (mode === 'pan') { camera.panBy(x - prev.x, y - prev.y); return }
    if (mode === 'erase') { eraseAt(x, y); return }
    if (mode === 'draw' && live) {
      const evs = typeof e.getCoalescedEvents === 'function' ? e.getCoalescedEvents() : []
      for (const ce of evs.length ? evs : [e]) {
        const [cx, cy] = local(ce)
        const [wx, wy] = camera.toWorld(cx, cy)
        const n = live.points.length
        if (Math.abs(live.points[n - 3]! - wx) + Math.abs(live.points[n - 2]! - wy) < 0.5 / camera.z) continue
        live.points.push(wx, wy, pressure(ce))
      }
      markAwareness()
      renderer.request()
    }
  })

  const end = (e: PointerEvent, cancelled: boolean) => {
    pointers.delete(e.pointerId)
    if (mode === 'gesture') {
      if (pointers.size < 2) { gesture = null; mode = pointers.size ? 'gesture' : 'idle' }
      return
    }
    if (e.pointerId !== active) return
    if (mode === 'draw' && live && !cancelled) {
      commitStroke(d.doc, { points: live.points, color: live.color, width: live.width, author: d.author(), kind: 'human' })
      d.onStrokeDone()
    }
    if (mode === 'erase') d.onStrokeDone()
    live = null
    mode = 'idle'
    active = -1
    stage.classList.remove('panning')
    markAwareness(true)
    renderer.request()
  }
  stage.addEventListener('pointerup', (e) => end(e, false))
  stage.addEventListener('pointercancel', (e) => end(e, true))
  stage.addEventListener('pointerleave', (e) => {
    if (e.pointerType === 'mouse' && mode === 'idle') { cursor = null; markAwareness() }
  })
  stage.addEventListener('contextmenu', (e) => e.preventDefault())

  stage.addEventListener('wheel', (e) => {
    e.preventDefault()
    const [x, y] = local(e)
    const unit = e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? 400 : 1
    if (!e.ctrlKey && !e.metaKey && Math.abs(e.deltaX) > 0 && e.deltaMode === 0) {
      camera.panBy(-e.deltaX, -e.deltaY) // trackpad two-finger scroll
      return
    }
    const dy = e.deltaY * unit
    camera.zoomAt(x, y, Math.exp(-dy * (e.ctrlKey ? 0.01 : 0.0015)))
  }, { passive: false })

  const typing = (e: KeyboardEvent) => {
    const t = e.target as HTMLElement
    return t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.isContentEditable)
  }
  window.addEventListener('keydown', (e) => {
    if (typing(e)) return
    if (e.code === 'Space') { space = true; stage.classList.add('space'); e.preventDefault() }
  })
  window.addEventListener('keyup', (e) => {
    if (e.code === 'Space') { space = false; stage.classList.remove('space') }
  })
  window.addEventListener('blur', () => { space = false; stage.classList.remove('space') })

  return { isDrawing: () => mode === 'draw' }
}
