// A short notice floating on the stage (why a press was refused, a full room): one at a time, gone after a few seconds.
export function mountNotice(stage: HTMLElement) {
  const el = document.createElement('div')
  el.className = 'ui stage-notice'
  el.dataset.testid = 'stage-notice'
  el.setAttribute('role', 'status')
  el.hidden = true
  stage.append(el)
  let timer = 0
  return {
    /** Show `text` under the stage point (x, y) for a few seconds. */
    show(text: string, x: number, y: number) {
      el.textContent = text
      el.style.left = `${Math.max(8, x)}px`
      el.style.top = `${Math.max(8, y + 8)}px`
      el.hidden = false
      clearTimeout(timer)
      timer = window.setTimeout(() => { el.hidden = true }, 4000)
    },
  }
}
