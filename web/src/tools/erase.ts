// Eraser: delete every stroke, text and button the pointer touches while it is down (one undo step per drag).
import { eraseItems } from '../ops'
import { hitStroke } from '../geometry'
import type { Sample, Tool, ToolContext } from './tool'

/** Eraser radius in screen pixels. */
const RADIUS = 6

export class EraseTool implements Tool {
  readonly cursor = 'cell'

  constructor(private ctx: ToolContext) {}

  down(at: Sample) { this.eraseAt(at) }
  move(samples: Sample[]) { const last = samples[samples.length - 1]; if (last) this.eraseAt(last) }
  up() { this.ctx.endStep() }
  cancel() { this.ctx.endStep() } // what was erased stays erased; Ctrl+Z brings it back

  private eraseAt(at: Sample) {
    const { camera, store, widgets, doc } = this.ctx
    const [wx, wy] = camera.toWorld(at.x, at.y)
    const r = RADIUS / camera.z
    const near = { minX: wx - r, minY: wy - r, maxX: wx + r, maxY: wy + r }
    const hits: string[] = []
    for (const e of store.visible(near)) {
      if (hitStroke(e.stroke.points, e.stroke.width, wx, wy, r)) hits.push(e.stroke.id)
    }
    const widgetHits = widgets.visible(near).map((e) => e.widget.id) // a widget is hit anywhere in its box
    if (hits.length || widgetHits.length) eraseItems(doc, hits, widgetHits)
  }
}
