// Writing a text in place: a <textarea> laid over the canvas exactly where the text is drawn
// (same font, size and line height, moved and scaled with the camera), so typing looks like the
// text itself. Enter, Escape or a click away finish it (Shift+Enter: a new line); the text is
// written to the document once, on finish, as one undo step. An emptied text is removed.
// The browser's own textarea keeps caret, selection, IME and clipboard right: no hand-written
// text input.
import type * as Y from 'yjs'
import type { Camera } from './camera'
import { Emitter } from './emitter'
import type { BBox } from './geometry'
import { eraseItems, putWidget } from './ops'
import { MAX_WIDGET_TEXT, type Widget } from './types.gen'
import { LINE, WIDGET_FONT, layout, textWidth, type WidgetStore } from './widgets'

interface Deps {
  stage: HTMLElement
  camera: Camera
  doc: Y.Doc
  widgets: WidgetStore
  /** Close the undo step: one Ctrl+Z undoes one edit. */
  endStep(): void
}

interface Session { base: Widget; isNew: boolean }

export class TextEditor extends Emitter<{ change: BBox[] }> {
  readonly el = document.createElement('textarea')
  private session: Session | null = null

  constructor(private deps: Deps) {
    super()
    const el = this.el
    el.className = 'ui text-editor'
    el.dataset.testid = 'text-editor'
    el.maxLength = MAX_WIDGET_TEXT
    el.spellcheck = false
    el.wrap = 'off'
    el.hidden = true
    el.addEventListener('input', () => this.place())
    el.addEventListener('keydown', (e) => {
      if (e.isComposing) return
      if ((e.key === 'Enter' && !e.shiftKey) || e.key === 'Escape') { e.preventDefault(); this.finish() }
    })
    el.addEventListener('blur', () => this.finish()) // a click away
    deps.stage.append(el)
    deps.camera.on('change', () => this.place())
  }

  /** The id of the text being edited (the renderer leaves it to the textarea), or null. */
  get editing(): string | null { return this.session?.base.id ?? null }

  /** Start writing `base` (a new text, or a copy of one in the room). */
  open(base: Widget, isNew: boolean) {
    this.finish()
    this.session = { base, isNew }
    this.el.value = base.text
    this.el.hidden = false
    this.place()
    this.el.focus()
    this.el.setSelectionRange(base.text.length, base.text.length)
    this.emit('change', [layout(base).box]) // the canvas stops drawing it
  }

  /** Write what was typed (if it changed) and close; false if nothing was being edited. */
  finish(): boolean {
    const s = this.session
    if (!s) return false
    this.session = null // first: the blur that hiding causes comes back here
    const text = this.el.value.slice(0, MAX_WIDGET_TEXT)
    this.el.hidden = true
    const { doc, widgets } = this.deps
    if (!text.trim()) {
      if (!s.isNew && widgets.get(s.base.id)) eraseItems(doc, [], [s.base.id])
    } else if (s.isNew || text !== s.base.text) {
      const current = widgets.get(s.base.id)?.widget ?? s.base // a peer may have moved or recoloured it meanwhile
      putWidget(doc, { ...current, text, t: Date.now() })
    }
    this.deps.endStep()
    this.emit('change', [layout(s.base).box]) // drawn by the canvas again
    return true
  }

  /** Lay the textarea over the text: position, font and size follow the camera. */
  private place() {
    const s = this.session
    if (!s) return
    const { camera } = this.deps
    const { x, y, size, color } = s.base
    const [sx, sy] = camera.toScreen(x, y)
    const px = size * camera.z
    const lines = this.el.value.split('\n')
    const width = Math.max(size * 0.5, ...lines.map((l) => textWidth(l, size))) * camera.z
    const st = this.el.style
    st.left = `${sx}px`
    st.top = `${sy}px`
    st.font = `${px}px ${WIDGET_FONT}`
    st.lineHeight = String(LINE)
    st.color = color
    st.width = `${Math.ceil(width + px)}px` // room for the caret and the next character
    st.height = `${Math.ceil(lines.length * px * LINE)}px`
  }
}
