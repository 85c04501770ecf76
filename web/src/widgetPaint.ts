// Drawing text and buttons on a canvas context already in canvas units (the renderer's world
// transform): the same layout (./widgets) as hit tests and the eraser use, so what is drawn is
// what is clicked.
import { LINE, WIDGET_FONT, textWidth, type WidgetEntry } from './widgets'

/** How a button looks now on this page. */
export interface ButtonLook {
  /** Pressed and waiting for its behaviour's answer. */
  pressed: boolean
  /** This page may press it (a view link: only `anyone` buttons). */
  pressable: boolean
}

const lead = (LINE - 1) / 2 // half-leading: text sits mid-line, as in the editor's textarea

function drawLines(ctx: CanvasRenderingContext2D, lines: string[], x: number, y: number, size: number) {
  ctx.font = `${size}px ${WIDGET_FONT}`
  ctx.textBaseline = 'top'
  for (let i = 0; i < lines.length; i++) ctx.fillText(lines[i]!, x, y + (i * LINE + lead) * size)
}

export function paintText(ctx: CanvasRenderingContext2D, e: WidgetEntry) {
  ctx.fillStyle = e.widget.color
  drawLines(ctx, e.lines, e.widget.x, e.widget.y, e.widget.size)
}

/** Black or white, whichever reads better on `hex`. */
function labelColor(hex: string): string {
  const n = parseInt(hex.slice(1), 16)
  const lum = 0.299 * (n >> 16) + 0.587 * ((n >> 8) & 255) + 0.114 * (n & 255)
  return lum > 160 ? '#1d2127' : '#ffffff'
}

export function paintButton(ctx: CanvasRenderingContext2D, e: WidgetEntry, look: ButtonLook) {
  const { widget: w, box } = e
  const s = w.size
  const width = box.maxX - box.minX, height = box.maxY - box.minY
  const radius = Math.min(s * 0.45, height / 2)
  const sink = look.pressed ? s * 0.08 : 0
  ctx.save()
  if (!look.pressable) ctx.globalAlpha = 0.4
  if (!look.pressed) { // a shadow under a raised button
    ctx.fillStyle = 'rgba(16, 24, 40, 0.22)'
    ctx.beginPath(); ctx.roundRect(box.minX, box.minY + s * 0.1, width, height, radius); ctx.fill()
  }
  ctx.fillStyle = w.color
  ctx.beginPath(); ctx.roundRect(box.minX, box.minY + sink, width, height, radius); ctx.fill()
  if (look.pressed) { // darkened while its behaviour answers
    ctx.fillStyle = 'rgba(0, 0, 0, 0.28)'
    ctx.fill()
  }
  ctx.fillStyle = labelColor(w.color)
  ctx.font = `${s}px ${WIDGET_FONT}`
  ctx.textBaseline = 'top'
  const top = box.minY + sink + (height - e.lines.length * s * LINE) / 2
  e.lines.forEach((line, i) => ctx.fillText(line, box.minX + (width - textWidth(line, s)) / 2, top + (i * LINE + lead) * s))
  if (w.anyone) paintBadge(ctx, box.maxX, box.minY, s)
  ctx.restore()
}

/** The "anyone" mark: a view link may press this button too (it then acts with its installer's grant). */
function paintBadge(ctx: CanvasRenderingContext2D, right: number, top: number, s: number) {
  const fs = Math.max(s * 0.42, 1)
  ctx.font = `600 ${fs}px ${WIDGET_FONT}`
  const w = ctx.measureText('anyone').width + fs * 0.9, h = fs * 1.35
  const x = right - w * 0.75, y = top - h * 0.55
  ctx.globalAlpha = 1
  ctx.fillStyle = '#f08c00'
  ctx.beginPath(); ctx.roundRect(x, y, w, h, h / 2); ctx.fill()
  ctx.fillStyle = '#ffffff'
  ctx.textBaseline = 'middle'
  ctx.fillText('anyone', x + fs * 0.45, y + h / 2)
}
