// Text: a click on the canvas opens a new text there; a click on a text edits it. The editor
// (../textEditor) opens on release, once the browser has moved focus for the click.
import { newId } from '../schema'
import { textSize } from './state'
import type { TextEditor } from '../textEditor'
import type { Sample, Tool, ToolContext } from './tool'

export class TextTool implements Tool {
  readonly cursor = 'text'
  private at: Sample | null = null

  /** `full(at)`: the room holds as many widgets as it may (MAX_WIDGETS); say so near `at`. */
  constructor(private ctx: ToolContext, private editor: TextEditor, private full: (at: Sample) => void) {}

  down(at: Sample) { this.at = at }
  move(samples: Sample[]) { this.at = samples[samples.length - 1] ?? this.at }
  cancel() { this.at = null }

  up() {
    const at = this.at
    this.at = null
    if (!at || this.editAt(at)) return
    const { camera, settings } = this.ctx
    if (this.ctx.widgets.full) { this.full(at); return }
    const [wx, wy] = camera.toWorld(at.x, at.y)
    const size = textSize(settings.width)
    this.editor.open({
      id: newId('w'), type: 'text', x: wx, y: wy - size * 0.6, text: '', size, color: settings.color,
      author: this.ctx.author(), kind: 'human', anyone: false, t: Date.now(),
    }, true)
  }

  /** Edit the text under this stage point (a click with this tool, a double-click with any); whether there was one. */
  editAt(at: Sample): boolean {
    const [wx, wy] = this.ctx.camera.toWorld(at.x, at.y)
    const hit = this.ctx.widgets.at(wx, wy, 'text', 4 / this.ctx.camera.z)
    if (hit) this.editor.open(hit.widget, false)
    return hit !== null
  }
}
