// The canvas tools, one small object each, keyed by the id the toolbar selects; `press` is the
// gesture on a button, whatever the selected tool (but the eraser).
import { DrawTool } from './draw'
import { EraseTool } from './erase'
import { PanTool } from './pan'
import { PressTool } from './press'
import { TextTool } from './text'
import type { Presses } from '../presses'
import type { TextEditor } from '../textEditor'
import type { ToolId } from './state'
import type { Sample, Tool, ToolContext } from './tool'

export type Tools = Record<ToolId, Tool> & { text: TextTool; press: PressTool }

export function createTools(ctx: ToolContext, editor: TextEditor, presses: Presses, full: (at: Sample) => void): Tools {
  return {
    draw: new DrawTool(ctx), text: new TextTool(ctx, editor, full), erase: new EraseTool(ctx), pan: new PanTool(ctx.camera),
    press: new PressTool(ctx, presses),
  }
}
