// Pen: collect points while the pointer is down, commit one stroke on release. A tap on a text
// draws no dot: it may be the first half of the double-click that edits the text.
import { commitStroke } from '../ops'
import type { LiveInk } from '../renderer'
import type { Sample, Tool, ToolContext } from './tool'

export class DrawTool implements Tool {
  readonly cursor = 'crosshair'
  private ink: LiveInk | null = null

  constructor(private ctx: ToolContext) {}

  down(at: Sample) {
    const { camera, settings } = this.ctx
    const [wx, wy] = camera.toWorld(at.x, at.y)
    this.ink = { points: [wx, wy, at.pressure], color: settings.color, width: settings.width }
    this.ctx.showInk(this.ink)
  }

  move(samples: Sample[]) {
    const ink = this.ink
    if (!ink) return
    const { camera } = this.ctx
    for (const s of samples) {
      const [wx, wy] = camera.toWorld(s.x, s.y)
      const n = ink.points.length
      // Skip sub-pixel jitter: it adds points (and sync traffic) without changing the line.
      if (Math.abs(ink.points[n - 3]! - wx) + Math.abs(ink.points[n - 2]! - wy) < 0.5 / camera.z) continue
      ink.points.push(wx, wy, s.pressure)
    }
    this.ctx.showInk(ink)
  }

  up() {
    const ink = this.ink
    if (!ink) return
    this.ink = null
    const ctx = this.ctx
    if (ink.points.length === 3 && ctx.widgets.at(ink.points[0]!, ink.points[1]!, 'text')) { ctx.showInk(null); return }
    commitStroke(ctx.doc, { points: ink.points, color: ink.color, width: ink.width, author: ctx.author(), kind: 'human' })
    ctx.endStep()
    ctx.showInk(null)
  }

  cancel() {
    this.ink = null
    this.ctx.showInk(null)
  }
}
