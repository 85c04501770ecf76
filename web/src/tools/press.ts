// A button under the pointer: pressed when the pointer goes up still on it (like any button),
// with any tool but the eraser (which removes it). Which buttons this page may press: ../presses.
import type { Presses } from '../presses'
import type { WidgetEntry } from '../widgets'
import type { Sample, Tool, ToolContext } from './tool'

export class PressTool implements Tool {
  readonly cursor = 'pointer'
  private target: string | null = null
  private last: Sample | null = null

  constructor(private ctx: ToolContext, private presses: Presses) {}

  /** The button under this stage point, whether or not this page may press it. */
  buttonAt(at: Sample): WidgetEntry | null {
    const [wx, wy] = this.ctx.camera.toWorld(at.x, at.y)
    return this.ctx.widgets.at(wx, wy, 'button')
  }

  /** The button under this stage point that this page may press. */
  pressableAt(at: Sample): WidgetEntry | null {
    const e = this.buttonAt(at)
    return e && this.presses.allowed(e.widget) ? e : null
  }

  down(at: Sample) { this.target = this.pressableAt(at)?.widget.id ?? null; this.last = at }
  move(samples: Sample[]) { this.last = samples[samples.length - 1] ?? this.last }
  cancel() { this.target = null }

  up() {
    const hit = this.last && this.pressableAt(this.last)
    if (hit && hit.widget.id === this.target) void this.presses.press(hit.widget)
    this.target = null
  }
}
