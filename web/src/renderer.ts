// Canvas renderer: rAF-coalesced redraws, viewport culling, cached Path2D per stroke.
// Texts are drawn with the strokes into the scene bitmap (interleaved by age); buttons above,
// every frame (at most MAX_WIDGETS, and their look changes while pressed).
import type { Camera } from './camera'
import type { StrokeStore } from './store'
import type { WidgetStore } from './widgets'
import { paintButton, paintText, type ButtonLook } from './widgetPaint'
import type { Widget } from './types.gen'
import { inkPath, type Ink } from './paths'
import { intersects, type BBox } from './geometry'

export interface LiveInk extends Ink { color: string }

export class Renderer {
  private ctx: CanvasRenderingContext2D
  private dpr = 1
  private w = 0
  private h = 0
  private pending = 0
  frameTimes: number[] = []
  frames = 0
  lastVisible = 0
  /** Extra inks drawn on top each frame (own stroke in progress, others' live strokes). */
  overlays: () => LiveInk[] = () => []
  /** The text being edited in place (drawn by the editor, not here), and how a button looks. */
  editing: () => string | null = () => null
  buttonLook: (w: Widget) => ButtonLook = () => ({ pressed: false, pressable: true })

  constructor(readonly canvas: HTMLCanvasElement, readonly camera: Camera, readonly store: StrokeStore,
              readonly widgets: WidgetStore) {
    this.ctx = canvas.getContext('2d', { alpha: false })!
    const ro = new ResizeObserver(() => this.resize())
    ro.observe(canvas)
    this.resize()
    camera.on('change', () => this.request())
    store.on('change', (dirty) => this.repaint(dirty))
    widgets.on('change', (dirty) => this.repaint(dirty))
  }

  /** These areas changed: re-render the cached scene where it covers them, redraw if they are in view. */
  repaint(dirty: BBox[]) {
    for (const b of dirty) this.invalidate(b)
    const view = this.viewBox()
    if (dirty.some((b) => intersects(b, view))) this.request()
  }

  private resize() {
    const r = this.canvas.getBoundingClientRect()
    this.dpr = Math.min(window.devicePixelRatio || 1, 2)
    this.w = r.width
    this.h = r.height
    this.canvas.width = Math.max(1, Math.round(r.width * this.dpr))
    this.canvas.height = Math.max(1, Math.round(r.height * this.dpr))
    this.cache.valid = false
    this.request()
  }

  get size() { return { w: this.w, h: this.h } }

  viewBox(): BBox {
    const c = this.camera
    return { minX: c.x, minY: c.y, maxX: c.x + this.w / c.z, maxY: c.y + this.h / c.z }
  }

  /** Schedule one redraw on the next animation frame (many calls -> one frame). */
  request() {
    if (this.pending) return
    this.pending = requestAnimationFrame(() => { this.pending = 0; this.draw() })
  }

  draw() {
    const t0 = performance.now()
    const { ctx, camera: c, dpr } = this
    ctx.setTransform(1, 0, 0, 1, 0, 0)
    ctx.fillStyle = '#fbfbfc'
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height)
    this.drawGrid()
    this.blitScene()
    const k = dpr * c.z
    ctx.setTransform(k, 0, 0, k, -c.x * k, -c.y * k)
    for (const e of this.widgets.visible(this.viewBox(), 'button')) {
      if (e.widget.id !== this.editing()) paintButton(ctx, e, this.buttonLook(e.widget))
    }
    for (const ink of this.overlays()) {
      if (ink.points.length < 3) continue
      ctx.fillStyle = ink.color
      ctx.fill(inkPath(ink, false))
    }
    this.frames++
    const dt = performance.now() - t0
    this.frameTimes.push(dt)
    if (this.frameTimes.length > 240) this.frameTimes.shift()
  }

  // ---- scene cache ---------------------------------------------------------
  // Committed strokes are rendered into an offscreen bitmap covering the viewport plus a
  // margin; panning only blits it. It is re-rendered when the view leaves the margin, when
  // the zoom settles at a new level, or when a change touches the cached area.
  private scene = document.createElement('canvas')
  private sctx = this.scene.getContext('2d')!
  private cache = { valid: false, x: 0, y: 0, z: 1, w: 0, h: 0 }
  private settleTimer = 0
  sceneRenders = 0
  static readonly MARGIN = 320

  /** A change inside the cached area means the bitmap must be re-rendered. */
  private invalidate(b: BBox) {
    const q = this.cache
    if (q.valid && intersects(b, { minX: q.x, minY: q.y, maxX: q.x + q.w, maxY: q.y + q.h })) q.valid = false
  }

  private renderScene() {
    const { camera: c, dpr } = this
    const m = Renderer.MARGIN
    const W = this.w + 2 * m, H = this.h + 2 * m
    if (this.scene.width !== Math.round(W * dpr) || this.scene.height !== Math.round(H * dpr)) {
      this.scene.width = Math.round(W * dpr)
      this.scene.height = Math.round(H * dpr)
    }
    const q = this.cache
    q.z = c.z; q.x = c.x - m / c.z; q.y = c.y - m / c.z; q.w = W / c.z; q.h = H / c.z
    const ctx = this.sctx
    ctx.setTransform(1, 0, 0, 1, 0, 0)
    ctx.clearRect(0, 0, this.scene.width, this.scene.height)
    const k = dpr * c.z
    ctx.setTransform(k, 0, 0, k, -q.x * k, -q.y * k)
    const area = { minX: q.x, minY: q.y, maxX: q.x + q.w, maxY: q.y + q.h }
    const visible = this.store.visible(area)
    const texts = this.widgets.visible(area, 'text')
    const editing = this.editing()
    const tiny = 1.5 / c.z // below ~1.5 screen px a stroke is a dot
    let color = ''
    let t = 0
    for (const e of visible) {
      for (; t < texts.length && texts[t]!.widget.t <= e.stroke.t; t++) { // older texts first: painter's order
        if (texts[t]!.widget.id !== editing) paintText(ctx, texts[t]!)
        color = ''
      }
      if (e.stroke.color !== color) { color = e.stroke.color; ctx.fillStyle = color }
      const b = e.bbox
      if (b.maxX - b.minX < tiny && b.maxY - b.minY < tiny) { ctx.fillRect(b.minX, b.minY, tiny, tiny); continue }
      ctx.fill(this.store.path(e))
    }
    for (; t < texts.length; t++) if (texts[t]!.widget.id !== editing) paintText(ctx, texts[t]!)
    this.lastVisible = visible.length
    q.valid = true
    this.sceneRenders++
  }

  private blitScene() {
    const { ctx, camera: c, dpr } = this
    const q = this.cache
    const v = this.viewBox()
    const ratio = c.z / q.z
    const inside = v.minX >= q.x && v.minY >= q.y && v.maxX <= q.x + q.w && v.maxY <= q.y + q.h
    if (!q.valid || (ratio === 1 && !inside) || ratio > 2 || ratio < 0.5) this.renderScene()
    else if (ratio !== 1) {
      // Zooming: stretch the old bitmap now, re-render once the zoom settles.
      clearTimeout(this.settleTimer)
      this.settleTimer = window.setTimeout(() => { this.cache.valid = false; this.request() }, 140)
    }
    const s = c.z / q.z
    ctx.setTransform(1, 0, 0, 1, 0, 0)
    ctx.drawImage(this.scene, (q.x - c.x) * c.z * dpr, (q.y - c.y) * c.z * dpr, this.scene.width * s, this.scene.height * s)
  }

  /** Subtle dot grid in world space; hidden when zoomed far out. */
  private drawGrid() {
    const { ctx, camera: c, dpr } = this
    let step = 24
    while (step * c.z < 14) step *= 4
    const s = step * c.z
    if (s > 400) return
    ctx.fillStyle = '#dde0e5'
    const ox = (-c.x * c.z) % s, oy = (-c.y * c.z) % s
    const r = Math.max(1, dpr)
    for (let x = ox < 0 ? ox + s : ox; x < this.w; x += s) {
      for (let y = oy < 0 ? oy + s : oy; y < this.h; y += s) {
        ctx.fillRect(Math.round(x * dpr), Math.round(y * dpr), r, r)
      }
    }
  }
}
