// The canvas tools, one small object each, keyed by the id the toolbar selects.
import { DrawTool } from './draw'
import { EraseTool } from './erase'
import { PanTool } from './pan'
import type { ToolId } from './state'
import type { Tool, ToolContext } from './tool'

export type Tools = Record<ToolId, Tool>

export function createTools(ctx: ToolContext): Tools {
  return { draw: new DrawTool(ctx), erase: new EraseTool(ctx), pan: new PanTool(ctx.camera) }
}
