// Stands in for ssh2 in the bundle (tsconfig.json "paths", which ncc follows for every module it
// bundles). docker-modem requires ssh2 as it loads, though only ssh:// endpoints use it. ssh2 is
// a large part of what the bundle would be, and node compiles every byte of a bundle at each
// start, so `npm run build` bundles it on its own, in ssh2/ beside the main bundle, and this
// stand-in loads it only when docker-modem makes its first Client.
exports.Client = function Client(...args) {
  // __non_webpack_require__ is a plain Node require that webpack (ncc) leaves alone: the file is
  // not bundled, and the relative path is resolved at run time from the bundle's own directory.
  const { Client: Real } = __non_webpack_require__('./ssh2/index.js')
  return new Real(...args)
}
