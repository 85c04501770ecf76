// Hand: drag the view. Also used for Space-drag, middle/right-button drag and view-only pages.
import type { Camera } from '../camera'
import type { Sample, Tool } from './tool'

export class PanTool implements Tool {
  private last: Sample | null = null

  constructor(private camera: Camera) {}

  get cursor() { return this.last ? 'grabbing' : 'grab' }

  down(at: Sample) { this.last = at }

  move(samples: Sample[]) {
    const to = samples[samples.length - 1]
    if (!this.last || !to) return
    this.camera.panBy(to.x - this.last.x, to.y - this.last.y)
    this.last = to
  }

  up() { this.last = null }
  cancel() { this.last = null }
}
