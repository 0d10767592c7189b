// Stands in for ssh2 in the bundle (tsconfig.json "paths", which ncc follows for every module it
// bundles). docker-modem requires ssh2 as it loads, though only ssh:// endpoints use it. ssh2 is
// about half of what the bundle would be (357 of 745 kB), and node compiles every byte of a
// bundle at each start-up, so `npm run build` bundles it on its own, in ssh2/ beside the bundle
// that stands it in, and this loads it when docker-modem makes its first Client.
exports.Client = function Client(...args) {
  // webpack's name for the plain require of the bundle's own file: a relative path is then looked
  // up from the bundle, not bundled.
  const { Client: Real } = __non_webpack_require__('./ssh2/index.js')
  return new Real(...args)
}
