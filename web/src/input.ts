// Pointer, touch and wheel input on the stage. Each one-pointer gesture goes to one tool
// (./tools): a button under the pointer takes it (but for the eraser); two fingers pinch-zoom;
// the wheel zooms or (trackpad) pans. While a text is being written, a click away only finishes
// it; a double-click on a text edits it.
import type { Camera } from './camera'
import type { LocalPresence } from './localPresence'
import type { ToolState } from './tools/state'
import type { Sample, Tool } from './tools/tool'
import type { Tools } from './tools'
import type { TextEditor } from './textEditor'

interface InputDeps {
  stage: HTMLElement
  camera: Camera
  settings: ToolState
  tools: Tools
  presence: LocalPresence
  editor: TextEditor
}

export function attachInput({ stage, camera, settings, tools, presence, editor }: InputDeps) {
  const pointers = new Map<number, { x: number; y: number; type: string }>()
  /** The gesture under way: which pointer drives which tool. */
  let active: { pointer: number; tool: Tool } | null = null
  let holdingPan = false // Space held down
  const pinch = createPinch(camera, pointers)

  /** The tool a new gesture at `at` would use. */
  const toolFor = (button: number, at?: Sample): Tool => {
    if (button !== 0 || holdingPan) return tools.pan
    if (at && settings.tool !== 'erase' && tools.press.pressableAt(at)) return tools.press
    return settings.readOnly ? tools.pan : tools[settings.tool]
  }
  /** The cursor for the gesture under way, or for one that would start at `at`. */
  const showCursor = (at?: Sample) => {
    const button = !active && at && !holdingPan && settings.tool !== 'erase' ? tools.press.buttonAt(at) : null
    stage.style.cursor = active ? active.tool.cursor
      : button ? (tools.press.pressableAt(at!) ? 'pointer' : 'not-allowed') : toolFor(0).cursor
  }
  settings.on('change', () => showCursor())
  showCursor()

  const local = (e: MouseEvent): [number, number] => {
    const r = stage.getBoundingClientRect()
    return [e.clientX - r.left, e.clientY - r.top]
  }
  // Mouse input reports a constant pressure; only pens and touch have a real one.
  const sample = (e: PointerEvent): Sample => {
    const [x, y] = local(e)
    return { x, y, pressure: e.pointerType === 'pen' || e.pointerType === 'touch' ? (e.pressure || 0.5) : 0.5 }
  }

  stage.addEventListener('pointerdown', (e) => {
    if ((e.target as HTMLElement).closest('.ui')) return
    const [x, y] = local(e)
    pointers.set(e.pointerId, { x, y, type: e.pointerType })
    stage.setPointerCapture(e.pointerId)
    const touches = [...pointers.values()].filter((p) => p.type === 'touch').length
    if (e.pointerType === 'touch' && touches >= 2) {
      active?.tool.cancel() // a second finger turns a stroke into a pinch
      active = null
      pinch.start()
      return
    }
    if (active || pinch.active) return
    if (editor.finish()) { e.preventDefault(); return } // a click away finishes the text, nothing more
    const at = sample(e)
    const tool = toolFor(e.button, at)
    if (tool === tools.pan) e.preventDefault()
    active = { pointer: e.pointerId, tool }
    tool.down(at)
    showCursor()
  })

  stage.addEventListener('dblclick', (e) => {
    if ((e.target as HTMLElement).closest('.ui')) return
    if (settings.readOnly || holdingPan || settings.tool === 'erase') return
    const [x, y] = local(e)
    tools.text.editAt({ x, y, pressure: 0.5 })
  })

  stage.addEventListener('pointermove', (e) => {
    const [x, y] = local(e)
    const prev = pointers.get(e.pointerId)
    if (e.pointerType !== 'touch' || (!active && !pinch.active)) presence.setCursor(camera.toWorld(x, y))
    if (!active) showCursor({ x, y, pressure: 0.5 })
    if (!prev) return
    pointers.set(e.pointerId, { x, y, type: e.pointerType })
    if (pinch.active) { pinch.update(); return }
    if (active?.pointer !== e.pointerId) return
    const coalesced = typeof e.getCoalescedEvents === 'function' ? e.getCoalescedEvents() : []
    active.tool.move((coalesced.length ? coalesced : [e]).map(sample))
  })

  const end = (e: PointerEvent, cancelled: boolean) => {
    pointers.delete(e.pointerId)
    if (pinch.active) { pinch.lifted(); return }
    if (!active || active.pointer !== e.pointerId) return
    if (cancelled) active.tool.cancel(); else active.tool.up()
    active = null
    showCursor(sample(e))
    presence.flush()
  }
  stage.addEventListener('pointerup', (e) => end(e, false))
  stage.addEventListener('pointercancel', (e) => end(e, true))
  stage.addEventListener('pointerleave', (e) => {
    if (e.pointerType === 'mouse' && !active) presence.setCursor(null)
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

  return {
    /** Space held: new gestures pan whatever tool is selected. */
    holdPan(on: boolean) {
      holdingPan = on
      showCursor()
    },
  }
}
export type Input = ReturnType<typeof attachInput>

/** Two-finger pinch: pan by the midpoint's motion, zoom by the change in finger distance. */
function createPinch(camera: Camera, pointers: Map<number, { x: number; y: number }>) {
  let active = false
  let last: { dist: number; cx: number; cy: number } | null = null
  const update = () => {
    const [a, b] = [...pointers.values()]
    if (!a || !b) return
    const cx = (a.x + b.x) / 2, cy = (a.y + b.y) / 2
    const dist = Math.hypot(a.x - b.x, a.y - b.y)
    if (last) {
      camera.panBy(cx - last.cx, cy - last.cy)
      if (last.dist > 0 && dist > 0) camera.zoomAt(cx, cy, dist / last.dist)
    }
    last = { dist, cx, cy }
  }
  return {
    get active() { return active },
    start() { active = true; last = null; update() },
    update,
    /** A finger lifted: the pinch ends; it stays "active" (no drawing) until every finger is up. */
    lifted() {
      if (pointers.size < 2) { last = null; active = pointers.size > 0 }
    },
  }
}
