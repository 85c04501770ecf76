// Bundle web/src into web/dist: app.js (esbuild), app.css, index.html. Idempotent.
import { build } from 'esbuild'
import { mkdirSync, copyFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const src = join(here, 'src')
const dist = join(here, 'dist')
mkdirSync(dist, { recursive: true })

const t0 = Date.now()
await build({
  entryPoints: [join(src, 'main.ts')],
  outfile: join(dist, 'app.js'),
  bundle: true,
  format: 'esm',
  target: ['es2020'],
  minify: process.argv.includes('--minify') || process.env.NODE_ENV === 'production',
  sourcemap: true,
  logLevel: 'warning',
})
copyFileSync(join(src, 'index.html'), join(dist, 'index.html'))
copyFileSync(join(src, 'styles.css'), join(dist, 'app.css'))
console.log(`web/dist built in ${Date.now() - t0} ms`)
