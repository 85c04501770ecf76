// The checkout's build of the Python package's data (what a wheel carries; git-ignored):
//  - web/src bundled into server/static: app.js (esbuild), app.css, index.html;
//  - the sandbox's engine, quickjs.wasm and its licence, copied from node_modules/quickjs-wasi into
//    agent/sandbox/assets, after checking it is the release agent/sandbox/ENGINE.json pins (version in
//    package.json, package-lock.json and the installed package; the wasm's sha256): a mismatch fails the build.
// Idempotent. `--minify` (or NODE_ENV=production) minifies the bundle.
import { build } from 'esbuild'
import { createHash } from 'node:crypto'
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const root = dirname(here)
const src = join(here, 'src')
const dist = join(root, 'server', 'static')
const readJson = (path) => JSON.parse(readFileSync(path, 'utf8'))

function copyEngine() {
  const pinPath = join(root, 'agent', 'sandbox', 'ENGINE.json')
  const pin = readJson(pinPath)
  const pkgDir = join(root, 'node_modules', pin.package)
  const versions = {
    'agent/sandbox/ENGINE.json': pin.version,
    'package.json': readJson(join(root, 'package.json')).dependencies[pin.package],
    'package-lock.json': readJson(join(root, 'package-lock.json')).packages[`node_modules/${pin.package}`]?.version,
    [`node_modules/${pin.package}`]: readJson(join(pkgDir, 'package.json')).version,
  }
  const differing = Object.entries(versions).filter(([, v]) => v !== pin.version)
  if (differing.length) {
    throw new Error(`${pin.package} versions differ: ${JSON.stringify(versions)} (update ENGINE.json with the new sha256, or run npm ci)`)
  }
  const wasm = readFileSync(join(pkgDir, pin.wasm))
  const sha = createHash('sha256').update(wasm).digest('hex')
  if (sha !== pin.sha256) {
    throw new Error(`node_modules/${pin.package}/${pin.wasm} has sha256 ${sha}, ${pinPath} pins ${pin.sha256}`)
  }
  const assets = join(root, 'agent', 'sandbox', 'assets')
  mkdirSync(assets, { recursive: true })
  copyFileSync(join(pkgDir, pin.wasm), join(assets, pin.wasm))
  copyFileSync(join(pkgDir, 'LICENSE'), join(assets, pin.license_file))
}

const t0 = Date.now()
copyEngine()
mkdirSync(dist, { recursive: true })
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
console.log(`server/static and agent/sandbox/assets built in ${Date.now() - t0} ms`)
